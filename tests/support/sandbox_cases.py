"""The programs the sandbox is judged by: typical good model programs with
their answers, and the bad-input matrix with the status each must get.

Shared by tests/test_sandbox.py and `python -m benchmarks.sandbox_table`, so the
table in docs/sandbox.md is exactly what the tests assert. Escapes marked
with an advisory or issue come from asteval's own security history.
"""

from __future__ import annotations

from dataclasses import dataclass

from r2local.sandbox.limits import ProgramStatus


@dataclass(frozen=True)
class Case:
    name: str
    program: str
    expect: ProgramStatus
    value: str | None = None  # for good programs: the normalised answer


GOOD: tuple[Case, ...] = (
    Case("solve() then print", "def solve():\n    total = 6 * 250\n    return total / 1000\nprint(solve())",
         ProgramStatus.OK, "1.5"),
    Case("import math, ceil", "import math\nboxes = math.ceil(250 / 12)\nprint(boxes)", ProgramStatus.OK, "21"),
    Case("clock: time + timedelta",
         "from datetime import datetime, timedelta\n"
         "t = datetime.strptime('09:45', '%H:%M') + timedelta(hours=2, minutes=15)\n"
         "print(t.strftime('%H:%M'))", ProgramStatus.OK, "12:00"),
    Case("clock: hours between",
         "from datetime import datetime\nstart = datetime.strptime('08:50', '%H:%M')\n"
         "end = datetime.strptime('17:20', '%H:%M')\nprint((end - start).seconds / 3600)", ProgramStatus.OK, "8.5"),
    Case("clock: split and map", "h, m = map(int, '09:45'.split(':'))\ntotal = h * 60 + m + 135\n"
         "print(f'{total // 60:02d}:{total % 60:02d}')", ProgramStatus.OK, "12:00"),
    Case("unpacking: *rest and **dict", "first, *rest = [3, 4, 5]\nd = {**{'a': first}, 'b': sum(rest)}\n"
         "answer = d['a'] + d['b']", ProgramStatus.OK, "12"),
    Case("days between dates", "from datetime import date\nprint((date(2024, 3, 1) - date(2024, 2, 1)).days)",
         ProgramStatus.OK, "29"),
    Case("percentage discount", "price = 80\ndiscount = 15 / 100\nprint(round(price * (1 - discount), 2))",
         ProgramStatus.OK, "68"),
    Case("round to cents", "print(round(1234.5678, 2))", ProgramStatus.OK, "1234.57"),
    Case("float noise", "print(0.1 + 0.2)", ProgramStatus.OK, "0.3"),
    Case("f-string percent", "rate = 0.1 + 0.2\nprint(f'{rate:.1%}')", ProgramStatus.OK, "30.0%"),
    Case("loop sum", "total = 0\nfor i in range(1, 101):\n    total += i\nprint(total)", ProgramStatus.OK, "5050"),
    Case("while with break", "n = 0\nwhile True:\n    n += 7\n    if n > 100:\n        break\nprint(n)",
         ProgramStatus.OK, "105"),
    Case("dict and generator", "prices = {'apple': 0.5, 'pear': 0.75}\ncart = {'apple': 4, 'pear': 2}\n"
         "answer = sum(prices[k] * n for k, n in cart.items())", ProgramStatus.OK, "3.5"),
    Case("answer beats print", "answer = 12\nprint('working...')", ProgramStatus.OK, "12"),
    Case("result variable", "result = 2 ** 10", ProgramStatus.OK, "1024"),
    Case("last expression", "x = 7\nx * 6", ProgramStatus.OK, "42"),
    Case("Fraction", "from fractions import Fraction\nanswer = Fraction(1, 3) + Fraction(1, 6)", ProgramStatus.OK, "1/2"),
    Case("Decimal money", "from decimal import Decimal\nanswer = Decimal('19.99') * 3", ProgramStatus.OK, "59.97"),
    Case("statistics.mean", "import statistics\nprint(statistics.mean([2, 4, 9]))", ProgramStatus.OK, "5"),
    Case("combinations", "from itertools import combinations\nprint(len(list(combinations(range(10), 3))))",
         ProgramStatus.OK, "120"),
    Case("convert units by name", "km = convert(17, 'miles', 'km')\nanswer = round(km, 2)", ProgramStatus.OK, "27.36"),
    Case("convert a temperature", "answer = convert(100, 'degrees Fahrenheit', 'Celsius')", ProgramStatus.OK,
         "37.77777778"),
    Case("recursion", "def fact(n):\n    return 1 if n <= 1 else n * fact(n - 1)\nprint(fact(20))",
         ProgramStatus.OK, "2432902008176640000"),
    Case("try/except", "try:\n    x = 1 / 0\nexcept ZeroDivisionError:\n    x = 0\nprint(x)", ProgramStatus.OK, "0"),
    Case("math without import", "print(math.sqrt(144))", ProgramStatus.OK, "12"),
    Case("big int in bounds", "print(2 ** 1000 % 1000)", ProgramStatus.OK, "376"),
)

_FLOOD = "while True:\n    print('spam ' * 20)"
_RECURSE = "def f(n):\n    return f(n + 1)\nf(0)"
_KABOOM = (  # Ned Batchelder's "eval really is dangerous", as in asteval's tests
    "(lambda fc=(lambda n: [c for c in ().__class__.__bases__[0].__subclasses__() "
    "if c.__name__ == n][0]): fc('function')(fc('code')(0,0,0,0,'KABOOM',(),(),(),'','',0,''),{})())()"
)

BAD: tuple[Case, ...] = (
    Case("import os", "import os\nos.system('id')", ProgramStatus.REFUSED),
    Case("__import__('os')", "__import__('os').system('id')", ProgramStatus.REFUSED),
    Case("from subprocess import run", "from subprocess import run\nrun(['id'])", ProgramStatus.REFUSED),
    Case("import socket", "import socket", ProgramStatus.REFUSED),
    Case("from math import a non-listed name", "from math import __loader__", ProgramStatus.REFUSED),
    Case("relative import", "from . import worker", ProgramStatus.REFUSED),
    Case("subclasses escape", "().__class__.__bases__[0].__subclasses__()", ProgramStatus.REFUSED),
    Case("kaboom (lambda + subclasses)", _KABOOM, ProgramStatus.REFUSED),
    Case("open /etc/passwd", "open('/etc/passwd').read()", ProgramStatus.REFUSED),
    Case("with open(...)", "with open('/etc/passwd') as f:\n    print(f.read())", ProgramStatus.REFUSED),
    Case("exec", "exec('1')", ProgramStatus.REFUSED),
    Case("eval", "eval('1')", ProgramStatus.REFUSED),
    Case("compile", "compile('1', 'x', 'eval')", ProgramStatus.REFUSED),
    Case("getattr dunder", "getattr(1, '__class__')", ProgramStatus.REFUSED),
    Case("convert's globals", "convert.__globals__", ProgramStatus.REFUSED),
    Case("convert between dimensions", "answer = convert(3, 'kg', 'metres')", ProgramStatus.ERROR),
    Case("globals()", "globals()", ProgramStatus.REFUSED),
    Case("vars() / dir()", "print(vars(), dir())", ProgramStatus.REFUSED),
    Case("type(1)", "type(1)", ProgramStatus.REFUSED),
    Case("__builtins__", "__builtins__['open']", ProgramStatus.REFUSED),
    Case("format-string attribute walk", "'{0.__class__}'.format(1)", ProgramStatus.REFUSED),
    Case("format_map attribute walk", "'{x.__class__}'.format_map({'x': 1})", ProgramStatus.REFUSED),
    Case("format string built at run time", "s = '{0.' + '__class__}'\nprint(s.format(1))", ProgramStatus.REFUSED),
    Case("f-string spec with a field (CVE-2025-24359)", "f\"{1:{'{__fstring__.__class__}'}}\"", ProgramStatus.ERROR),
    Case("lambda __code__", "(lambda: 0).__code__", ProgramStatus.REFUSED),
    Case("generator gi_frame", "g = (x for x in [1])\ng.gi_frame", ProgramStatus.REFUSED),
    Case("traceback frame globals", "try:\n    1 / 0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_globals",
         ProgramStatus.REFUSED),
    Case("print.__reduce__ (asteval #86)", "print.__reduce__()", ProgramStatus.REFUSED),
    Case("Procedure internals (GHSA-vp47-9734-prjw)", "def f():\n    return 1\nf.__asteval__", ProgramStatus.REFUSED),
    Case("str.mro()", "str.mro()", ProgramStatus.REFUSED),
    Case("unbound str.format", "str.format('{0}', 1)", ProgramStatus.REFUSED),
    Case("print(file=...)", "print('x', file=1)", ProgramStatus.REFUSED),
    Case("module internals", "import datetime\ndatetime.sys.modules", ProgramStatus.ERROR),
    Case("mutate a module for the next run", "import math\nmath.pi = 3", ProgramStatus.REFUSED),
    Case("mutate a class for the next run", "from fractions import Fraction\nFraction.limit_denominator = 0",
         ProgramStatus.REFUSED),
    Case("delete a module member", "import math\ndel math.pi", ProgramStatus.REFUSED),
    Case("delete an item behind an attribute", "import math\ndel math.pi[0]", ProgramStatus.ERROR),
    Case("numpy loadtxt (asteval default table)", "loadtxt('/etc/passwd')", ProgramStatus.ERROR),
    Case("raise SystemExit", "raise SystemExit", ProgramStatus.ERROR),
    Case("while True: pass", "while True:\n    pass", ProgramStatus.TIMEOUT),
    Case("loop caught by except Exception", "try:\n    while True:\n        pass\nexcept Exception:\n    pass",
         ProgramStatus.TIMEOUT),
    Case("for i in range(10**12)", "for i in range(10**12):\n    pass", ProgramStatus.TIMEOUT),
    Case("sum(range(10**13)) in C", "sum(range(10**13))", ProgramStatus.TIMEOUT),
    Case("9**9**9", "9**9**9", ProgramStatus.TOO_BIG),
    Case("pow(10, 10**8)", "pow(10, 10**8)", ProgramStatus.TOO_BIG),
    Case("1 << 10**10", "1 << 10**10", ProgramStatus.TOO_BIG),
    Case("math.factorial(10**7)", "import math\nmath.factorial(10**7)", ProgramStatus.TOO_BIG),
    Case("int squaring loop", "x = 3\nwhile True:\n    x = x * x", ProgramStatus.TOO_BIG),
    Case("[0]*10**9", "[0] * 10**9", ProgramStatus.MEMORY),
    Case("'x'*10**10", "'x' * 10**10", ProgramStatus.MEMORY),
    Case("string doubling loop", "s = 'x'\nwhile True:\n    s = s + s", ProgramStatus.MEMORY),
    Case("list(range(10**9))", "x = list(range(10**9))", ProgramStatus.MEMORY),
    Case("''.join of 1 GB", "''.join(['x' * 1000000] * 1000)", ProgramStatus.MEMORY),
    Case("Decimal precision 10**9", "from decimal import Decimal, getcontext\ngetcontext().prec = 10**9\n"
         "print(Decimal(1) / Decimal(7))", ProgramStatus.MEMORY),
    Case("deep recursion", _RECURSE, ProgramStatus.ERROR),
    Case("recursion through map() in C", "def f(x):\n    return list(map(f, [x]))\nf(1)", ProgramStatus.ERROR),
    Case("print flood", _FLOOD, ProgramStatus.OUTPUT),
    Case("one huge print", "print('x' * 5_000_000)", ProgramStatus.OUTPUT),
    Case("NUL byte in source", "print(1)\x00", ProgramStatus.ERROR),
    Case("program too long", "x = 1\n" * 5000, ProgramStatus.REFUSED),
    Case("no answer", "def solve():\n    x = 1\nprint(solve())", ProgramStatus.NO_ANSWER),
)
