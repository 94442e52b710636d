// bulkhead/ledger/rational_json.hpp: the JSON form of a rational, found by
// ADL: {"num": n, "den": d} (integers). Its own header so that the
// co-location JSON (peak windows' fractions) does not pull in the ledger.
//
// Thread-safety: pure functions over values.
#pragma once

#include <nlohmann/json.hpp>

#include "bulkhead/ledger/rational.hpp"

namespace bulkhead::ledger {

inline void to_json(nlohmann::json& j, const rational& r) { j = nlohmann::json{{"num", r.num()}, {"den", r.den()}}; }

}  // namespace bulkhead::ledger
