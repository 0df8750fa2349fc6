"""How a local tier answers one task: right where it can be, and knowing when it is not.

For a quantitative task a model that writes programs writes one (greedy); the
sandbox runs it and its result is the answer, with the program kept as the
working. Then more samples (a prose answer, sampled programs) are compared
with it: the share that states the same answer is the confidence, and a
share below ``agree_below`` escalates. Measured on word problems, agreement
separated right from wrong local answers (AUROC 0.92) where mean token
probability did not, while the sampled majority itself was worse than the
greedy program: so the greedy program answers, and the samples only vote.
Degenerate output (a line repeated over and over) escalates too.

Every kind with a comparable answer votes, short answers (a name, a place)
included; open text alone gets one answer. A multiple choice no program settles
is asked open, its stem alone, and kept as the option its answers name
(``options``): shown the options, the small model answers by position. A split vote draws more samples
(up to ``max_samples``) before deciding: at the 30 % calibration every
local loss was a split vote, and three samples give agreement three values.
Sampling stops as soon as the samples still to come could not change the
decision.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from r2local.backends import Completion, Message
from r2local.config import ExecutorSection
from r2local.engine.answers import (
    CHOICE,
    CLOCK,
    KIND_ORDER,
    NUMBER,
    POLAR,
    SHORT,
    TEXT,
    Answer,
    agreement,
    answer_kind,
    read_answer,
)
from r2local.engine.kinds import computable
from r2local.engine.options import Options, named_option, parse_options
from r2local.engine.prompts import (
    BRIEF_MAX_TOKENS,
    brief_messages,
    line_messages,
    program_answer,
    program_messages,
    short_messages,
)
from r2local.engine.standing import LOW_AGREEMENT
from r2local.engine.timefactors import missing_factor
from r2local.sandbox import ProgramResult, extract_program
from r2local.sandbox.units import asks_conversion

PROGRAM, PROSE, BRIEF = "program", "prose", "brief"
LINE = "line"  # a program asked for in one line (prompts.ONE_LINE): a cheap vote; recorded as a program
# Call one sample: (messages, temperature, sample index, stream it?, token cap or None) -> the completion.
CallFn = Callable[[list[Message], float, int, bool, "int | None"], Completion]
RunFn = Callable[[str, int], ProgramResult]  # (program, sample index) -> its result


@dataclass
class Sample:
    way: str  # program, prose or brief
    temperature: float
    text: str
    answer: Answer | None
    program: str | None = None
    status: str | None = None  # the sandbox's verdict for a program
    value: str | None = None  # what the program computed, as it printed it
    prob: float | None = None  # mean token probability of the reply (a recorded feature)


@dataclass
class LocalAnswer:
    """What the local tier says, and whether to keep it."""

    answer: str  # the text kept as the answer ("" when there is none)
    failure: str | None  # why not to keep it (escalate), or None
    confidence: float | None = None  # share of samples agreeing with the answer
    working: str | None = None  # the program behind the answer
    features: dict[str, float] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    kind: str = TEXT  # the answer kind the task asks for (see answers.answer_kind)
    programs: bool = False  # whether a program was asked for (the tier writes them and the kind fits)


def degenerate(text: str) -> str | None:
    """Why ``text`` looks like a model stuck in a loop, or None."""
    lines = [ln.strip() for ln in text.splitlines() if len(ln.strip()) >= 6]
    if lines:
        line, count = Counter(lines).most_common(1)[0]
        if count >= 4:
            return f"degenerate output (one line repeated {count} times)"
    if len(text) >= 400 and len(zlib.compress(text.encode())) < 0.15 * len(text.encode()):
        return "degenerate output (the text repeats itself)"
    return None


def uses_programs(kind: str, programs: bool, check: bool = False) -> bool:
    """Whether a tier that may write programs writes one for this kind (quantities and times), or for a
    yes/no or choice question a program can settle (a ``check``: kinds.computable)."""
    return programs and (check or kind not in (POLAR, CHOICE, SHORT, TEXT))


# Sample orders: the samples to take first (way + "0" is that way's greedy sample),
# then a cycle repeated up to the number allowed. P: a program, Q: a prose answer,
# B: a brief answer (the answer alone, a few tokens), L: a program in one line. benchmarks/sample_order.py
# measures each order's AUROC and seconds per answer kind.
ORDERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "mixed": (("P0", "Q0"), ("P", "Q")),
    "programs": (("P0",), ("P",)),
    "program-brief": (("P0", "B0"), ("P", "B")),
    "programs-then-prose": (("P0", "P"), ("Q0", "P")),
    "prose": (("Q0",), ("Q",)),
    "prose-brief": (("Q0",), ("B",)),
    "brief": (("B0",), ("B",)),
    "program-brief-programs": (("P0", "B0"), ("P",)),
    "program-lines": (("P0",), ("L",)),
}
WAYS = {"P": PROGRAM, "Q": PROSE, "B": BRIEF, "L": LINE}
# The order each answer kind uses under sample_order = "auto" (the kinds not named:
# "mixed"), and the agreement threshold that goes with it where it differs. Measured
# with benchmarks/sample_order.py (Qwen2.5-Coder-0.5B, 65 questions of our own sets and
# generated ones; each order replayed on the same cached samples; checked on a later set, one_step_b).
# Numbers: program-brief's AUROC was within 0.006 of mixed's (0.966 vs 0.972, both at 0.5) in
# half its seconds (median 23 s vs 46 s), since a brief answer costs ~12 tokens where a prose one costs 300;
# a brief answer without working is a weaker voter on multi-step problems, so the
# threshold is 0.5: three agreeing programs outvote three brief answers (at 0.5 it kept
# no wrong answer and escalated 6 right ones of 30; mixed at 0.6: 1 and 5). Yes/no:
# prose-brief had the best AUROC of the orders tried (n = 6 only) at a third of
# prose's time. Choice: every order scored 0.5 (the 0.5B picks one letter whatever
# the samples), so the cheapest one. Short answers: the prose vote stays (its prose
# is already one sentence; brief answers lowered AUROC by 0.07).
# Later (86 questions: one_step, multi_step, 40 generated; replayed): after a split between the program
# and the brief answer only programs are drawn ("program-brief-programs"). On a multi-step problem a brief
# answer is right 2 times in 36, so each further one only diluted agreement and sent right programs up.
# At its bar 0.6 against program-brief at 0.5: AUROC 0.940 -> 0.979, wrong answers kept 1 -> 0, right ones
# escalated 15 -> 7, median seconds +20 %; held out (one_step_b, multi_step_b: 42) 0.842 -> 0.864, 1 -> 1,
# 10 -> 9 (a check made after 0.5 had been seen there: at 0.5 it kept 4 wrong). With a later fresh set
# (multi_step_c) pooled, 62 held out: the same decisions as program-brief (36 kept, 4 wrong, 12 right sent
# up), AUROC 0.773 -> 0.793: the gain is in distribution. Programs alone were cheapest but kept 6 wrong
# answers (AUROC 0.796): the one brief answer is what a wrong program rarely agrees with.
# Then (session 32, benchmarks/compact_vote.py, replayed on 132 multi-step problems and 199 generated ones):
# sampled programs asked for one line ("program-lines": the greedy program, then one-line programs, no brief
# answer) vote at a third of a full program's tokens. Against program-brief-programs at the same bar 0.6:
# held out (multi_step_b/c/d, 70) AUROC 0.663 -> 0.866, wrong answers kept 2 -> 4, right ones sent up 15 -> 6;
# in distribution (multi_step, 40 generated) 0.967 -> 0.821, 0 -> 3, 7 -> 8; vote seconds 7.2 -> 2.5 (median).
# On 199 generated problems (seed 0) AUROC 0.888, no wrong answer kept. A bar of 0.7 kept fewer wrong answers
# (3 of 132) but fell to 0.819 there.
AUTO_ORDER: dict[str, str] = {NUMBER: "program-lines", CLOCK: "program-lines", POLAR: "prose-brief", CHOICE: "brief"}
# The agreement bar that goes with an auto order (others: [executor] agree_below, 0.6 by default).
AUTO_AGREE_BELOW: dict[str, float] = {"program-brief": 0.5, "programs": 0.5, "program-brief-programs": 0.6,
                                      "program-lines": 0.6}
# A conversion between named units votes among programs only: its programs call convert() and get exact
# factors, while a brief or prose answer states whatever factor the model recalls (17 miles "is 17 km"), so
# prose outvoted right programs and sent the part to the cloud. Measured on the compound bench's conversion
# parts and benchmarks/sets/conversions*.jsonl (docs/benchmarks.md, "Units by name").
CONVERSION_ORDER = "programs"
# A yes/no or choice question a program settles (a ``check``, kinds.computable): a program, then brief answers
# (a yes/no the model can often say without working). benchmarks/check_order.py, 43 checks of our sets, local:
# programs only were as right (35/43) and kept one wrong answer fewer (6 vs 7), but slower (median 6.4 s vs 5.7).
CHECK_ORDER = "program-brief"


def order_name(kind: str, setting: str, check: bool = False, converts: bool = False) -> str:
    """The sample order of a task: under "auto", a check takes CHECK_ORDER, a unit conversion (``converts``)
    CONVERSION_ORDER, any other task its kind's AUTO_ORDER."""
    if setting != "auto":
        return setting
    if converts:
        return CONVERSION_ORDER
    return CHECK_ORDER if check else AUTO_ORDER.get(kind, "mixed")


def threshold(kind: str, settings: ExecutorSection, given: float | None, check: bool = False,
              converts: bool = False) -> float:
    """The agreement threshold for a task of ``kind``: the calibrated one if ``given``, else the
    user's [executor] agree_below, else the one measured with the task's auto order (see order_name)."""
    if given is not None:
        return given
    if settings.sample_order == "auto" and "agree_below" not in settings.model_fields_set:
        return AUTO_AGREE_BELOW.get(order_name(kind, "auto", check, converts), settings.agree_below)
    return settings.agree_below


def plan_samples(kind: str, programs: bool, k: int, order: str = "mixed", check: bool = False) -> list[tuple[str, bool]]:
    """Which samples to take, in order, at most ``k``: (way, greedy?). Without programs a
    program becomes a prose answer (so "programs" is "prose" there)."""
    if kind == TEXT:
        return [(PROSE, True)]  # open text has no answer to compare: one answer, no vote
    lead, cycle = ORDERS[order]
    tokens = list(lead) + [cycle[i % len(cycle)] for i in range(k)]
    plan: list[tuple[str, bool]] = []
    for token in tokens:
        way = WAYS[token[0]]
        if way in (PROGRAM, LINE) and not uses_programs(kind, programs, check):
            way = PROSE
        greedy = token.endswith("0") and (way, True) not in plan  # one greedy sample per way: it is deterministic
        plan.append((way, greedy))
    return plan[:k]


class Answerer:
    def __init__(self, settings: ExecutorSection) -> None:
        self.settings = settings

    def answer(self, prose: list[Message], task: str, programs: bool, call: CallFn, run: RunFn, *,
               agree_below: float | None = None, early_stop: bool = True, kind: str | None = None) -> LocalAnswer:
        """Answer the task whose prose prompt is ``prose``.

        Args:
            prose: the prose prompt; a program prompt is made from its last message.
            task: the task's text (its wording says what kind of answer it wants).
            programs: whether this tier writes programs.
            call: makes one recorded model call.
            run: runs one program in the sandbox, recorded.
            agree_below: the calibrated agreement threshold (None: see ``threshold``).
            early_stop: the answer may still climb: stop sampling once the decision cannot change, and
                draw more samples (up to [executor] max_samples) when the first ones split. False: k samples.
            kind: the answer kind when the caller knows better than the task's wording (a follow-up turn).
        """
        s = self.settings
        kind = kind or answer_kind(task)
        writes = programs and s.programs
        check = writes and kind in (POLAR, CHOICE) and computable(task)  # a program settles it (kinds.computable)
        converts = writes and kind == NUMBER and asks_conversion(task)
        options = _open_options(kind, check, task, prose)
        asked = SHORT if options else kind  # an open choice is asked as a short answer to its stem
        tau = threshold(asked, s, agree_below, check, converts)
        prompt = short_messages(_stem_messages(prose, task, options)) if asked == SHORT else prose
        read = _option_reader(options) if options else lambda text: read_answer(text, kind, task)
        # A node that cannot climb keeps its k samples (the record is all they are for); others may draw more.
        most = max(s.samples, s.max_samples) if early_stop else s.samples
        plan = plan_samples(asked, writes, most, order_name(asked, s.sample_order, check, converts), check)
        target = min(s.samples, len(plan))
        taken: list[Sample] = []
        while len(taken) < target:
            way, greedy = plan[len(taken)]
            temperature = 0.0 if greedy else s.sample_temperature
            taken.append(self._sample(way, prompt, asked, read, temperature, len(taken), call, run))
            if options and taken[0].answer is None:
                break  # the stem alone names none of the options: it needs them, which the tier above sees
            if len(taken) == 1 and taken[0].answer is None and (PROSE, True) not in plan:
                plan = [plan[0], (PROSE, True), *plan[1:]][:most]  # no greedy answer: a prose one takes its place
            if len(taken) == target < len(plan) and early_stop and _split(taken):
                target = len(plan)  # the first samples split: draw more before deciding
            if early_stop and s.early_stop and _decided(taken, target, tau):
                break
            held = len(taken) == 1 and taken[0].answer is not None and _factor_failure(kind, task, taken[0].program)
            if early_stop and held:
                break  # the greedy program answers, and it is not kept: more samples cannot change that
        out = self._outcome(taken, kind, tau, check)
        if options:
            _show_option(out, options)
        if out.failure is None and out.working:
            out.failure = _factor_failure(kind, task, out.working)  # a misreading the samples share
        out.kind, out.programs = kind, uses_programs(kind, writes, check)
        if out.confidence is not None:
            out.features["agree_below"] = tau  # the bar this answer was held to (it differs by kind)
        return out

    def _sample(self, way: str, prose: list[Message], kind: str, read: Callable[[str], Answer | None],
                temperature: float, i: int, call: CallFn, run: RunFn) -> Sample:
        if way in (PROSE, BRIEF):
            brief = way == BRIEF
            messages = brief_messages(prose, kind) if brief else prose
            result = call(messages, temperature, i, i == 0 and not brief, BRIEF_MAX_TOKENS if brief else None)
            return Sample(way, temperature, result.text.strip(), read(result.text), prob=result.confidence)
        messages = program_messages(prose, kind)
        result = call(line_messages(messages) if way == LINE else messages, temperature, i, False, None)
        program = extract_program(result.text)
        if program is None:
            return Sample(PROGRAM, temperature, result.text.strip(), None, None, "no-program", prob=result.confidence)
        ran = run(program, i)
        answer = read(ran.value) if ran.ok and ran.value is not None else None
        return Sample(PROGRAM, temperature, result.text.strip(), answer, program, str(ran.status),
                      value=ran.value, prob=result.confidence)

    def _outcome(self, taken: list[Sample], kind: str, tau: float, check: bool = False) -> LocalAnswer:
        features = _features(taken, kind)
        ordered = _answer_first(taken)
        if ordered is None:  # no sample stated an answer: keep the greedy text, if any, and say so
            text = next((t.text for t in taken if t.way != PROGRAM and t.text), "")
            why = degenerate(text) or ("no answer could be read from the reply" if text else "empty answer")
            return LocalAnswer(text, why if kind != TEXT or not text else None, None, None, features, taken)
        best = ordered[0]
        agree = agreement([t.answer for t in ordered])
        features.update(agree=agree.with_answer, agree_majority=agree.majority)
        if best.prob is not None:
            features["mean_prob"] = best.prob
        # A program's answer is what it computed, as written ("12:15, 15" stays that, not a re-read of it).
        text = program_answer(best.value or best.answer.show(), check) if best.way == PROGRAM else best.text
        failure = degenerate(best.text if best.way != PROGRAM else best.program or "")
        confidence = agree.with_answer if len(taken) > 1 else None
        if failure is None and confidence is not None and confidence < tau:
            failure = f"{LOW_AGREEMENT} ({_share(agree.with_answer, len(taken))} samples agree, below {tau:.2f})"
        return LocalAnswer(text, failure, confidence, best.program if best.way == PROGRAM else None, features, taken)


def _open_options(kind: str, check: bool, task: str, prose: list[Message]) -> Options | None:
    """The options of a choice question a local tier answers open (see options): one no program settles,
    whose prompt carries its text whole (a step of a plan does not)."""
    if kind != CHOICE or check or not prose or task not in prose[-1]["content"]:
        return None
    return parse_options(task)


def _stem_messages(prose: list[Message], task: str, options: Options | None) -> list[Message]:
    """``prose`` with the task's options left out of its last message."""
    if options is None:
        return prose
    last = {**prose[-1], "content": prose[-1]["content"].replace(task, options.stem)}
    return [*prose[:-1], last]


def _option_reader(options: Options) -> Callable[[str], Answer | None]:
    def read(text: str) -> Answer | None:
        letter = named_option(text, options)
        return Answer(CHOICE, letter) if letter else None

    return read


def _show_option(out: LocalAnswer, options: Options) -> None:
    """An open choice's answer as its option ("C) Ottawa"); no option named: say so."""
    best = _answer_first(out.samples)
    if best is not None:
        out.answer = options.show(best[0].answer.value)
    elif out.answer:
        out.failure = "the answer names none of the options"
    out.features["open_choice"] = 1.0


def _factor_failure(kind: str, task: str, program: str | None) -> str | None:
    """Why a number's or time's ``program`` is not kept: it skipped a time factor the task needs (timefactors)."""
    return missing_factor(task, program) if program and kind in (NUMBER, CLOCK) else None


def _split(taken: list[Sample]) -> bool:
    """Whether some sample disagrees with the answer (or stated none)."""
    ordered = _answer_first(taken)
    return ordered is not None and agreement([t.answer for t in ordered]).with_answer < 1.0


def _decided(taken: list[Sample], planned: int, tau: float) -> bool:
    """Whether the samples still to come (up to ``planned``) could no longer change keep-or-escalate."""
    if len(taken) < 2 or len(taken) == planned:
        return False
    ordered = _answer_first(taken)
    if ordered is None:
        return False
    agreeing = round(agreement([t.answer for t in ordered]).with_answer * len(ordered))
    left = planned - len(taken)
    low, high = agreeing / planned, (agreeing + left) / planned
    return low >= tau or high < tau


def _answer_first(taken: list[Sample]) -> list[Sample] | None:
    """The samples with the one that answers first: the greedy program if it ran, else the first readable one."""
    order = [t for t in taken if t.answer is not None and t.temperature == 0.0] + [t for t in taken if t.answer is not None]
    if not order:
        return None
    best = order[0]
    return [best] + [t for t in taken if t is not best]


def _features(taken: list[Sample], kind: str) -> dict[str, float]:
    programs = [t for t in taken if t.way == PROGRAM]
    return {
        "samples": float(len(taken)),
        "program_ok": float(any(t.status == "ok" for t in programs[:1])) if programs else -1.0,
        "answer_kind": float(KIND_ORDER.index(kind)),
        "answer_chars": float(len(taken[0].text)) if taken else 0.0,
    }


def _share(value: float, n: int) -> str:
    agreeing = round(value * n)
    return f"{agreeing}/{n}"
