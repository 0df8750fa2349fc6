"""The evaluator: asteval's Interpreter, narrowed. Imported only in the worker.

asteval walks the AST itself (nothing is compiled or exec'd) and ships
defences we keep (no dunder attributes, no lambda/generator frames). On top
of it, this subclass:

- builds its own symbol table from a short allowlist (asteval's default one
  has a read-only `open`, `type`, `dir` and, with numpy installed, `loadtxt`);
- binds `import` to the read-only module stand-ins of modules.py;
- counts evaluated nodes and checks the clock, so loops and recursion stop
  with a status while the worker stays warm;
- routes arithmetic through Guard (number and sequence sizes);
- raises limits and policy breaches as BaseExceptions that neither asteval
  nor the program's own `except Exception` can swallow;
- formats with format() (f-strings) and a field-checking Formatter
  (str.format) instead of asteval's string formatting;
- runs the Python that model programs write and asteval lacks or gets
  wrong (compat.py; `*args` in calls here).
"""

from __future__ import annotations

import ast
import builtins
import decimal
import string
import time
import types
from typing import Any

from asteval import Interpreter
from asteval.astutils import RESERVED_WORDS, Procedure

from r2local.sandbox.answer import normalise_line, pick_answer
from r2local.sandbox.compat import PythonCompat
from r2local.sandbox.guard import Forbidden, Guard, LimitExceeded
from r2local.sandbox.limits import Limits, ProgramStatus
from r2local.sandbox.modules import ALLOWED_MODULES, SafeModule, build_modules
from r2local.sandbox.policy import (
    FORMAT_METHODS,
    check_tree,
    forbidden_attr,
    forbidden_field,
)
from r2local.sandbox.units import convert

SAFE_BUILTINS = (
    "abs", "all", "any", "bin", "bool", "callable", "chr", "complex", "dict",
    "divmod", "enumerate", "filter", "float", "format", "frozenset", "hex",
    "int", "isinstance", "issubclass", "iter", "len", "list", "map", "max",
    "min", "next", "oct", "ord", "range", "repr", "reversed", "round", "set",
    "slice", "sorted", "str", "sum", "tuple", "zip",
    "ArithmeticError", "AssertionError", "AttributeError", "Exception",
    "IndexError", "KeyError", "LookupError", "NameError", "NotImplementedError",
    "OverflowError", "RuntimeError", "StopIteration", "TypeError", "ValueError",
    "ZeroDivisionError",
)

# Check the clock every this many nodes: often enough to stop within ~10 ms,
# rarely enough to cost nothing.
_CLOCK_EVERY = 1024


class CappedWriter:
    """print()'s destination: keeps up to `limit` characters, then stops the run."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        room = self.limit - self.size
        if len(text) > room:
            self.parts.append(text[:room])
            self.size = self.limit
            raise LimitExceeded(ProgramStatus.OUTPUT, f"printed more than {self.limit:,} characters")
        self.parts.append(text)
        self.size += len(text)

    def flush(self) -> None:
        pass

    def getvalue(self) -> str:
        return "".join(self.parts)


class SafeFormatter(string.Formatter):
    """str.format whose fields may index but never reach forbidden attributes."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if forbidden_field(field_name):
            raise Forbidden(f"format field '{{{field_name}}}' is not allowed")
        return super().get_field(field_name, args, kwargs)


_FORMATTER = SafeFormatter()


class SandboxInterpreter(PythonCompat, Interpreter):
    """One program's interpreter; make a fresh one per run."""

    def __init__(self, limits: Limits, modules: dict[str, SafeModule], deadline: float) -> None:
        self.limits = limits
        self.modules = modules
        self.guard = Guard(limits)
        self.out = CappedWriter(limits.max_output_chars)
        self.last_print: tuple[str, str] | None = None
        self._deadline = deadline
        self._steps = 0
        self._depth = 0
        super().__init__(
            symtable=self._symbols(), use_numpy=False, writer=self.out, err_writer=self.out,
            max_statement_length=limits.max_program_chars,
            config={"import": True, "importfrom": True},
        )
        self.allow_unsafe_modules = False  # only our own on_attribute reads attributes
        self.symtable["print"] = self._print
        for node in ("generatorexp", "namedexpr"):
            self.node_handlers[node] = getattr(self, f"on_{node}")

    def _symbols(self) -> dict[str, Any]:
        table = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
        table["pow"] = self.guard.pow
        # math is bound without an import: small models often forget it.
        table["math"] = self.modules["math"]
        table["convert"] = convert  # units by name, so a program need not recall a factor
        return table

    # -- budget ------------------------------------------------------------
    def run(self, node, expr=None, lineno=None, with_raise=True):
        self._steps += 1
        if self._steps > self.limits.max_steps:
            raise LimitExceeded(ProgramStatus.TIMEOUT, f"stopped after {self.limits.max_steps:,} steps")
        if not self._steps % _CLOCK_EVERY:
            self._check_clock()
        return super().run(node, expr=expr, lineno=lineno, with_raise=with_raise)

    def _check_clock(self) -> None:
        if time.monotonic() > self._deadline:
            raise LimitExceeded(ProgramStatus.TIMEOUT, f"stopped after {self.limits.timeout_s:g} s")

    def _print(self, *args: Any, sep: Any = " ", end: Any = "\n", file: Any = None, flush: bool = False) -> None:
        if file is not None:
            raise Forbidden("print(file=...) is not allowed")
        sep = " " if sep is None else str(sep)
        raw = sep.join(str(a) for a in args)
        self.last_print = (raw, normalise_line(args, sep))
        self._check_clock()
        self.out.write(raw + ("\n" if end is None else str(end)))

    # -- names, attributes, imports --------------------------------------
    def on_attribute(self, node):
        if not isinstance(node.ctx, ast.Load):
            raise Forbidden(f"cannot {type(node.ctx).__name__.lower()} attribute '{node.attr}'")
        return self.safe_getattr(self.run(node.value), node.attr)

    def safe_getattr(self, obj: Any, attr: str) -> Any:
        if forbidden_attr(attr):
            raise Forbidden(f"attribute '.{attr}' is not allowed")
        if attr in FORMAT_METHODS and (isinstance(obj, str) or obj is str):
            if obj is str:
                raise Forbidden(f"str.{attr} is not allowed; call it on a string")
            return (lambda *a, **k: _FORMATTER.vformat(obj, a, k)) if attr == "format" else (
                lambda mapping: _FORMATTER.vformat(obj, (), mapping))
        value = getattr(obj, attr)
        if isinstance(value, types.ModuleType):
            raise Forbidden(f"attribute '.{attr}' is a module")
        return value

    def node_assign(self, node, val):
        if isinstance(node, ast.Name):
            # asteval re-validates the name with the tokenizer on every
            # assignment (~20 us, most of a loop's cost); a parsed Name is an
            # identifier already, only the reserved words need refusing.
            if node.id in RESERVED_WORDS or node.id in self.readonly_symbols:
                raise Forbidden(f"cannot assign to '{node.id}'")
            self.symtable[node.id] = val
            return
        if isinstance(node, ast.Attribute):
            # Attribute writes would outlive the run in a reused worker (a class
            # attribute, a module member); decimal contexts are reset per run.
            obj = self.run(node.value)
            if forbidden_attr(node.attr) or not isinstance(obj, decimal.Context):
                raise Forbidden(f"cannot set attribute '{node.attr}' (only on decimal contexts)")
            setattr(obj, node.attr, val)
            return
        super().node_assign(node, val)

    def on_delete(self, node):
        # asteval's version walks `del a.b[0]` by name and ends in a raw
        # setattr(a, 'b', ...); names and items are all a program needs.
        for target in node.targets:
            if isinstance(target, ast.Name):
                if target.id not in self.symtable:
                    self.raise_exception(target, exc=NameError, msg=f"name '{target.id}' is not defined")
                del self.symtable[target.id]
            elif isinstance(target, ast.Subscript):
                del self.run(target.value)[self.run(target.slice)]
            else:
                raise Forbidden("only names and items can be deleted")

    def _module(self, name: str | None) -> SafeModule:
        if name not in self.modules:
            raise Forbidden(f"import of '{name}' is not allowed")
        return self.modules[name]

    def on_import(self, node):
        for alias in node.names:
            self.symtable[alias.asname or alias.name] = self._module(alias.name)

    def on_importfrom(self, node):
        module = self._module(None if node.level else node.module)
        for alias in node.names:
            if alias.name == "*":
                self.symtable.update(module.members())
            elif alias.name in ALLOWED_MODULES[node.module]:
                self.symtable[alias.asname or alias.name] = getattr(module, alias.name)
            else:
                raise Forbidden(f"'{alias.name}' from '{node.module}' is not allowed")

    # -- arithmetic and formatting -----------------------------------------
    def on_binop(self, node):
        return self.guard.binop(node.op, self.run(node.left), self.run(node.right))

    def on_augassign(self, node):
        # asteval rebuilds an Assign(BinOp) per execution; doing it directly is
        # ~2x faster in loops, and the container is evaluated once, as in Python.
        target = node.target
        if isinstance(target, ast.Subscript):
            container, key = self.run(target.value), self.run(target.slice)
            container[key] = self.guard.binop(node.op, container[key], self.run(node.value))
            return
        if isinstance(target, ast.Name):
            current = self._getsym(target)
        else:
            current = self.safe_getattr(self.run(target.value), target.attr)
        self.node_assign(target, self.guard.binop(node.op, current, self.run(node.value)))

    def on_formattedvalue(self, node):
        value = self.run(node.value)
        convert = {115: str, 114: repr, 97: ascii}.get(node.conversion)
        if convert is not None:
            value = convert(value)
        spec = self.run(node.format_spec) if node.format_spec is not None else ""
        return format(value, spec)  # a spec has no fields: nothing to traverse

    # -- calls and constructs ------------------------------------------------
    def on_call(self, node):
        func = self.run(node.func)
        if not callable(func):
            self.raise_exception(node, exc=TypeError, msg=f"'{type(func).__name__}' object is not callable")
        args: list[Any] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                args.extend(self.run(arg.value))
            else:
                args.append(self.run(arg))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                kwargs.update(self.run(kw.value))
            else:
                kwargs[kw.arg] = self.run(kw.value)
        own = isinstance(func, Procedure)
        if own:
            if self._depth >= self.limits.max_depth:
                raise LimitExceeded(ProgramStatus.ERROR, f"recursion deeper than {self.limits.max_depth} calls")
            self._depth += 1
        try:
            return func(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any failure is the program's error
            name = getattr(func, "__name__", type(func).__name__)
            self.raise_exception(node, msg=f"{name}(): {exc}")
        finally:
            if own:
                self._depth -= 1
        return None


def load_modules(limits: Limits) -> dict[str, SafeModule]:
    """The importable stand-ins, with math's big-number functions size-checked."""
    guard = Guard(limits)
    checked = {"factorial": guard.factorial, "comb": guard.comb, "perm": guard.perm,
               "prod": guard.prod, "lcm": guard.lcm}
    return build_modules({"math": checked})


def run_program(source: str, limits: Limits, modules: dict[str, SafeModule]) -> dict[str, Any]:
    """Check and run one program; never raises. Returns the reply fields."""
    start = time.monotonic()
    if len(source) > limits.max_program_chars:
        return _reply(ProgramStatus.REFUSED, error=f"program of {len(source):,} characters, "
                      f"over the limit of {limits.max_program_chars:,}")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        where = f" (line {exc.lineno})" if exc.lineno else ""
        return _reply(ProgramStatus.ERROR, error=f"SyntaxError: {exc.msg}{where}")
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        return _reply(ProgramStatus.ERROR, error=f"{type(exc).__name__}: {exc}")
    reason = check_tree(tree)
    if reason:
        return _reply(ProgramStatus.REFUSED, error=reason)

    decimal.setcontext(decimal.Context())  # the previous program may have changed it
    interp = SandboxInterpreter(limits, modules, deadline=start + limits.timeout_s)
    status, error, last = ProgramStatus.OK, None, None
    try:
        last = interp.run(tree, expr=source, with_raise=True)
    except LimitExceeded as exc:
        status, error = exc.status, exc.message
    except Forbidden as exc:
        status, error = ProgramStatus.REFUSED, str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever the program raised
        status, error = _classify(interp, exc, limits)
    output = interp.out.getvalue()
    if status is not ProgramStatus.OK:
        return _reply(status, output=output, error=error)
    value = pick_answer(interp.symtable, output, interp.last_print, last, limits.max_output_chars)
    if value is None:
        return _reply(ProgramStatus.NO_ANSWER, output=output,
                      error="no `answer` variable, no printed line (other than None), no final value")
    return _reply(ProgramStatus.OK, value=value, output=output)


def _classify(interp: SandboxInterpreter, exc: Exception, limits: Limits) -> tuple[ProgramStatus, str]:
    """Status and one-line message for an exception that ended the program."""
    holder = interp.error[0] if interp.error else None
    kind = holder.exc if holder is not None and holder.exc is not None else type(exc)
    if issubclass(kind, MemoryError):
        return ProgramStatus.MEMORY, f"out of memory (limit {limits.max_memory_mb} MB)"
    message = (holder.msg if holder is not None and holder.msg else str(exc)).strip()
    if issubclass(kind, NotImplementedError):  # asteval's word for unsupported syntax
        message = f"{message.strip(chr(39))} is not supported in the sandbox"
    line = getattr(holder, "lineno", None)
    text = f"{kind.__name__}: {message}" + (f" (line {line})" if line else "")
    return ProgramStatus.ERROR, text[:300]


def _reply(status: ProgramStatus, value: str | None = None, output: str = "", error: str | None = None) -> dict[str, Any]:
    return {"status": status.value, "value": value, "output": output, "error": error}
