# Guarded definitions Compile puts in front of every expression. They shadow
# the operators (Compile rewrites +, -, *, /, comparisons and = into calls to
# _add, _subtract, ...) and the builtins that can build a large value or walk
# one deeply in a single interpreter step. A _jqeval_* guard (guard.go) checks
# the operands' sizes in Go, charges what the operation builds to the
# evaluation's budget ($__jqeval), and passes its input through; an alias
# defined before the shadowing definition then runs the real builtin.
#
# Aliases of the builtins (they resolve before the shadowing below).
def _jqeval_assign(ps; $v): _assign(ps; $v);
def _jqeval_modify(ps; f): _modify(ps; f);
def _jqeval_setpath($p; $v): setpath($p; $v);
def _jqeval_tostring: tostring;
def _jqeval_tojson: tojson;
def _jqeval_fromjson: fromjson;
def _jqeval_tohtml: _tohtml;
def _jqeval_touri: _touri;
def _jqeval_tourid: _tourid;
def _jqeval_tocsv: _tocsv;
def _jqeval_totsv: _totsv;
def _jqeval_tosh: _tosh;
def _jqeval_tobase64: _tobase64;
def _jqeval_tobase64d: _tobase64d;
def _jqeval_format($f): format($f);
def _jqeval_flatten: flatten;
def _jqeval_flatten($d): flatten($d);
def _jqeval_addall: add;
def _jqeval_join($s): join($s);
def _jqeval_implode: implode;
def _jqeval_explode: explode;
def _jqeval_split($s): split($s);
def _jqeval_ascii_downcase: ascii_downcase;
def _jqeval_ascii_upcase: ascii_upcase;
def _jqeval_sort: sort;
def _jqeval_unique: unique;
def _jqeval_keys: keys;
def _jqeval_reverse: reverse;
def _jqeval_min: min;
def _jqeval_max: max;
def _jqeval_transpose: transpose;
def _jqeval_sort_by($x): _sort_by($x);
def _jqeval_group_by($x): _group_by($x);
def _jqeval_unique_by($x): _unique_by($x);
def _jqeval_min_by($x): _min_by($x);
def _jqeval_max_by($x): _max_by($x);
def _jqeval_contains($x): contains($x);
def _jqeval_inside($x): inside($x);
def _jqeval_indices($x): indices($x);
def _jqeval_index($x): index($x);
def _jqeval_rindex($x): rindex($x);
def _jqeval_bsearch($x): bsearch($x);
def _jqeval_match($re; $flags; $test): _match($re; $flags; $test);
#
# Operators: the guard checks and charges, then returns [l, r].
def _add(l; r): _jqeval_add(l; r; $__jqeval) | .[0] + .[1];
def _multiply(l; r): _jqeval_mul(l; r; $__jqeval) | .[0] * .[1];
def _divide(l; r): _jqeval_div(l; r; $__jqeval) | .[0] / .[1];
def _subtract(l; r): _jqeval_cmp(l; r; $__jqeval) | .[0] - .[1];
def _equal(l; r): _jqeval_cmp(l; r; $__jqeval) | .[0] == .[1];
def _notequal(l; r): _jqeval_cmp(l; r; $__jqeval) | .[0] != .[1];
def _less(l; r): _jqeval_cmp(l; r; $__jqeval) | .[0] < .[1];
def _greater(l; r): _jqeval_cmp(l; r; $__jqeval) | .[0] > .[1];
def _lesseq(l; r): _jqeval_cmp(l; r; $__jqeval) | .[0] <= .[1];
def _greatereq(l; r): _jqeval_cmp(l; r; $__jqeval) | .[0] >= .[1];
#
# Updates: every path is checked (array indices within the size limit) and
# the containers along it, which the update copies, charged.
def _assign(ps; $v): _jqeval_paths([path(ps)]; $__jqeval) | _jqeval_assign(ps; $v);
def _modify(ps; f): _jqeval_paths([path(ps)]; $__jqeval) | _jqeval_modify(ps; f);
def setpath($p; $v): _jqeval_paths([$p]; $__jqeval) | _jqeval_setpath($p; $v);
#
# Builtins whose output grows with the encoded size of their input.
def tostring: _jqeval_text($__jqeval) | _jqeval_tostring;
def tojson: _jqeval_text($__jqeval) | _jqeval_tojson;
def fromjson: _jqeval_text($__jqeval) | _jqeval_fromjson;
def _tohtml: _jqeval_text($__jqeval) | _jqeval_tohtml;
def _touri: _jqeval_text($__jqeval) | _jqeval_touri;
def _tourid: _jqeval_text($__jqeval) | _jqeval_tourid;
def _tocsv: _jqeval_text($__jqeval) | _jqeval_tocsv;
def _totsv: _jqeval_text($__jqeval) | _jqeval_totsv;
def _tosh: _jqeval_text($__jqeval) | _jqeval_tosh;
def _tobase64: _jqeval_text($__jqeval) | _jqeval_tobase64;
def _tobase64d: _jqeval_text($__jqeval) | _jqeval_tobase64d;
def format($f): _jqeval_text($__jqeval) | _jqeval_format($f);
def flatten: _jqeval_text($__jqeval) | _jqeval_flatten;
def flatten($d): _jqeval_text($__jqeval) | _jqeval_flatten($d);
def add: _jqeval_text($__jqeval) | _jqeval_addall;
def add(f): [f] | add;
def join($s): _jqeval_join($s; $__jqeval) | _jqeval_join($s);
def implode: _jqeval_text($__jqeval) | _jqeval_implode;
def ascii_downcase: _jqeval_text($__jqeval) | _jqeval_ascii_downcase;
def ascii_upcase: _jqeval_text($__jqeval) | _jqeval_ascii_upcase;
#
# Builtins that copy their input or compare it deeply.
def explode: _jqeval_deep($__jqeval) | _jqeval_explode;
def split($s): _jqeval_deep($__jqeval) | _jqeval_split($s);
def sort: _jqeval_deep($__jqeval) | _jqeval_sort;
def unique: _jqeval_deep($__jqeval) | _jqeval_unique;
def keys: _jqeval_deep($__jqeval) | _jqeval_keys;
def reverse: _jqeval_deep($__jqeval) | _jqeval_reverse;
def min: _jqeval_deep($__jqeval) | _jqeval_min;
def max: _jqeval_deep($__jqeval) | _jqeval_max;
def transpose: _jqeval_transpose($__jqeval) | _jqeval_transpose;
def _sort_by($x): _jqeval_deep2($x; $__jqeval) | _jqeval_sort_by($x);
def _group_by($x): _jqeval_deep2($x; $__jqeval) | _jqeval_group_by($x);
def _unique_by($x): _jqeval_deep2($x; $__jqeval) | _jqeval_unique_by($x);
def _min_by($x): _jqeval_deep2($x; $__jqeval) | _jqeval_min_by($x);
def _max_by($x): _jqeval_deep2($x; $__jqeval) | _jqeval_max_by($x);
def sort_by(f): _sort_by(map([f]));
def group_by(f): _group_by(map([f]));
def unique_by(f): _unique_by(map([f]));
def min_by(f): _min_by(map([f]));
def max_by(f): _max_by(map([f]));
def contains($x): _jqeval_deep2($x; $__jqeval) | _jqeval_contains($x);
def inside($x): _jqeval_deep2($x; $__jqeval) | _jqeval_inside($x);
def indices($x): _jqeval_deep2($x; $__jqeval) | _jqeval_indices($x);
def index($x): _jqeval_deep2($x; $__jqeval) | _jqeval_index($x);
def rindex($x): _jqeval_deep2($x; $__jqeval) | _jqeval_rindex($x);
def bsearch($x): _jqeval_deep2($x; $__jqeval) | _jqeval_bsearch($x);
def IN(s): any(_equal(s; .); .);
def IN(src; s): any(_equal(src; s); .);
#
# Regular expressions: a global match builds every match at once.
def _match($re; $flags; $test): _jqeval_regex($__jqeval) | _jqeval_match($re; $flags; $test);
def match($re; $flags): _match($re; $flags; false)[];
def match($re): if $re | type == "array" then match($re[0]; $re[1]) else match($re; null) end;
def test($re; $flags): _match($re; $flags; true);
def test($re): if $re | type == "array" then test($re[0]; $re[1]) else test($re; null) end;
def capture($re; $flags): match($re; $flags) | .captures | _captures;
def capture($re): if $re | type == "array" then capture($re[0]; $re[1]) else capture($re; null) end;
def scan($re; $flags):
  match($re; _add($flags; "g")) |
  if .captures == [] then .string else [.captures[].string] end;
def scan($re): scan($re; null);
def splits($re; $flags):
  .[foreach (match($re; _add($flags; "g")), null) as {$offset, $length}
      (null; {start: .next, end: $offset, next: _add($offset; $length)})];
def splits($re): splits($re; null);
def split($re; $flags): [splits($re; $flags)];
def sub($re; str; $flags):
  reduce match($re; $flags) as {$offset, $length, $captures}
    ({s: ., r: []};
      reduce ($captures | _captures | str) as $s
        (.i = 0; .r[.i] += _add(.s[.next:$offset]; $s) | .i += 1) |
      .next = _add($offset; $length)) | _add(.r[]; .s[.next:]) // .s;
def sub($re; str): sub($re; str; null);
def gsub($re; str; $flags): sub($re; str; _add($flags; "g"));
def gsub($re; str): sub($re; str; "g");
