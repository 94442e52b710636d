#!/usr/bin/env bash
# Header code must be linkable from any number of translation units: nothing
# in a header may be a strong definition (a non-inline function or variable
# outside a template). The header self-check compiles every header into its
# own object (tests/meson.build); none of them may define a strong global
# symbol (nm types T, D, B, R, G; inline functions and templates are weak,
# W/V/u, and emitted only when used).
# Usage: check_header_symbols.sh LIBHEADER_CHECK.a
set -uo pipefail
command -v nm >/dev/null || { echo "SKIP: nm is missing (Debian package binutils)"; exit 77; }
lib=$1
[ -f "$lib" ] || { echo "FAIL: $lib does not exist"; exit 1; }
objs=$(nm "$lib" 2>/dev/null | grep -c '^\S*\.o:$')
strong=$(nm -C --defined-only "$lib" | awk '/\.o:$/ {obj=$0; next} $2 ~ /^[TDBRG]$/ {print obj " " $0}')
if [ -n "$strong" ]; then
  echo "$strong" | head -40
  echo "FAIL: strong definitions in headers (above): make them inline, constexpr or templates"
  exit 1
fi
echo "header symbols: $objs header translation units, no strong definition"
