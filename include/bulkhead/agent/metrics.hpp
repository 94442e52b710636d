// bulkhead/agent/metrics.hpp: an agent snapshot as one metrics exposition:
//   - each source's last reading (bulkhead/export/metrics.hpp: bulkhead_source_up,
//     bulkhead_host_*, bulkhead_instance_*), the source label being the
//     source's name as configured (the backend's own name when that is empty);
//   - the journal's accounted totals (bulkhead/export/accounted_metrics.hpp);
//   - the agent's own state (bulkhead_agent_*, docs/metrics.md).
// A pure function of the snapshot: rendering never calls a source or the
// journal.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "bulkhead/agent/agent.hpp"
#include "bulkhead/export/accounted_metrics.hpp"
#include "bulkhead/export/metrics.hpp"

namespace bulkhead::agent {

inline void render_metrics(const snapshot& s, metrics::writer& w) {
  using metrics::kind;
  using metrics::label;
  std::vector<metrics::source> srcs;
  srcs.reserve(s.sources.size());
  for (const auto& src : s.sources)
    srcs.push_back(metrics::source{src.kind, src.name.empty() ? src.source : src.name, src.up,
                                          src.capacity ? &*src.capacity : nullptr, src.instances});
  metrics::render(srcs, w);
  metrics::render(metrics::accounted{s.instances, s.tenants}, w);

  const auto c = kind::counter;
  const auto g = kind::gauge;
  const auto n = [](std::uint64_t v) { return std::to_string(v); };
  for (std::size_t i = 0; i < s.sources.size(); ++i) {
    const auto& src = s.sources[i];
    const std::string l = label("source", srcs[i].uri) + "," + label("kind", src.kind);
    w.add("bulkhead_agent_source_connects", c, "", "Connections the agent made to the source, the first included.", l,
          n(src.connects));
    w.add("bulkhead_agent_source_failed_rounds", c, "", "Rounds in which the source was down or read only in part.", l,
          n(src.failed_rounds));
  }
  const auto& st = s.stats;
  w.add("bulkhead_agent_rounds", c, "", "Rounds completed (read, ingest, durable, publish).", "", n(st.rounds));
  w.add("bulkhead_agent_missed_rounds", c, "", "Periods skipped because a round overran its period.", "", n(st.missed));
  w.add("bulkhead_agent_round_duration_seconds", g, "seconds", "Duration of the last round.", "",
        metrics::seconds_text(st.last_duration.count()));
  w.add("bulkhead_agent_round_duration_max_seconds", g, "seconds", "Longest round since the agent started.", "",
        metrics::seconds_text(st.max_duration.count()));
  w.add("bulkhead_agent_last_round_timestamp_seconds", g, "seconds", "Wall-clock time the last round ended.", "",
        metrics::seconds_text(s.at.time_since_epoch().count()));
  w.add("bulkhead_agent_accounted_deltas", c, "", "Deltas journaled since the agent started.", "", n(st.accounted));
  w.add("bulkhead_agent_duplicate_deltas", c, "", "Deltas the journal already held (not accounted again).", "",
        n(st.duplicates));
  w.add("bulkhead_agent_rejected_samples", c, "", "Samples the meter rejected (out of order, closed, out of range).", "",
        n(st.rejected));
  w.add("bulkhead_agent_failed_reads", c, "", "Failed reads of instances (each becomes part of a gap).", "",
        n(st.failed_reads));
  w.add("bulkhead_agent_gaps", c, "", "Gaps closed and journaled since the agent started.", "", n(st.gaps));
  w.add("bulkhead_agent_ingest_errors", c, "", "Readings whose ingest stopped on an error.", "", n(st.ingest_errors));
  w.add("bulkhead_agent_journal_up", g, "", "1 when the journal is open and the last round's records are durable.", "",
        s.journal_up ? "1" : "0");
  w.add("bulkhead_agent_journal_durable_sequence", g, "", "Sequence number of the last durable journal record.", "",
        n(s.durable_seq));
  w.add("bulkhead_agent_journal_failures", c, "", "Journal failures (a failed write or fdatasync).", "",
        n(st.journal_failures));
  w.add("bulkhead_agent_journal_reopens", c, "", "Journal reopens after a failure.", "", n(st.journal_reopens));
  w.add("bulkhead_agent_checkpoints", c, "", "Checkpoints written since the agent started.", "", n(st.checkpoints));
  w.add("bulkhead_agent_checkpoint_failures", c, "", "Checkpoints that failed.", "", n(st.checkpoint_failures));
  if (s.last_checkpoint)
    w.add("bulkhead_agent_last_checkpoint_timestamp_seconds", g, "seconds", "Wall-clock time of the last checkpoint.", "",
          metrics::seconds_text(s.last_checkpoint->time_since_epoch().count()));
}

[[nodiscard]] inline std::string render_metrics(const snapshot& s, metrics::format f) {
  metrics::writer w;
  render_metrics(s, w);
  return w.text(f);
}

}  // namespace bulkhead::agent
