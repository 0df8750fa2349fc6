"""Prompts for subtasks and the final synthesis.

A subtask prompt carries the question and the answers of its direct
dependencies only, so each call stays short and independent work stays
independent.
"""

from __future__ import annotations

from r2local.backends import Message
from r2local.engine.events import Node
from r2local.engine.kinds import CHOICE, CLOCK, NUMBER, POLAR, SHORT, asks_extreme, asks_property
from r2local.sandbox.units import asks_conversion

MAX_DEP_CHARS = 1200

SINGLE_SYSTEM = "Answer the question correctly and concisely. For calculations, show the key working, then the result."
# A short answer is compared across samples by its words: asking for it first keeps
# the vote from reading an opening phrase ("Sure! ...") as the answer.
SHORT_SYSTEM = (
    "Answer the question correctly. Start with the short answer itself (a name, a place, a date, a number or a "
    "term), then add at most one sentence."
)
# A vote sample only has to state an answer to be compared: without the working it
# costs a tenth of a prose answer's tokens (see benchmarks/sample_order.py). It names
# the kind of answer: a list of every kind ("a number, yes or no, ...") had the 0.5B
# reply "Yes" to "What is 25% of 60?".
BRIEF_SYSTEM = "Reply with the final answer only, no working and no sentence around it: {what}."
BRIEF_WHAT = {
    NUMBER: "the number, with its unit if it has one",
    CLOCK: "the time",
    POLAR: "yes or no",
    CHOICE: "the letter of the correct option",
    SHORT: "the name, place, date or term asked for",
}
BRIEF_MAX_TOKENS = 32
STEP_SYSTEM = (
    "You answer one step of a larger question. Use the results of earlier steps when given. "
    "Answer the step directly and briefly: the key working, then the result."
)
FINAL_SYSTEM = (
    "You write the final answer to a question from the results of its steps. "
    "Check the results, then state the answer clearly and concisely."
)


def _result(node: Node) -> str:
    answer = node.answer.strip() or "(no answer)"
    if len(answer) > MAX_DEP_CHARS:
        answer = answer[:MAX_DEP_CHARS] + " …"
    return answer


def single_messages(question: str) -> list[Message]:
    return [{"role": "system", "content": SINGLE_SYSTEM}, {"role": "user", "content": question}]


def short_messages(prose: list[Message]) -> list[Message]:
    """The prose prompt for a short-answer question: the whole-question system prompt asks for the answer first."""
    if prose and prose[0]["role"] == "system" and prose[0]["content"] == SINGLE_SYSTEM:
        return [{"role": "system", "content": SHORT_SYSTEM}, *prose[1:]]
    return prose


EARLIER = "\n\nEarlier in this conversation"


def _with_summary(system: str, prose: list[Message]) -> tuple[str, list[Message]]:
    """``system`` with the conversation summary ``prose``'s system message carries, if any (a summary
    rides in the system message), and the messages of ``prose`` after its system message."""
    own = prose[0]["content"] if prose and prose[0]["role"] == "system" else ""
    earlier = own.partition(EARLIER)[2]
    return system + (f"{EARLIER}{earlier}" if earlier else ""), prose[1 if own else 0:]


def brief_messages(prose: list[Message], kind: str) -> list[Message]:
    """A vote sample's prompt for the same task as ``prose``: its system message asks for the answer
    alone, of the ``kind`` the task asks for."""
    system, rest = _with_summary(BRIEF_SYSTEM.format(what=BRIEF_WHAT.get(kind, "a short answer")), prose)
    return [{"role": "system", "content": system}, *rest]


def step_messages(question: str, node: Node, deps: list[Node]) -> list[Message]:
    parts = [f"Question: {question}"]
    if deps:
        parts.append("Results of earlier steps:\n" + "\n".join(f"- {d.text}\n  Result: {_result(d)}" for d in deps))
    parts.append(f"Step to answer now: {node.text}")
    return [{"role": "system", "content": STEP_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def final_messages(question: str, deps: list[Node]) -> list[Message]:
    steps = "\n".join(f"{i}. {d.text}\n   Result: {_result(d)}" for i, d in enumerate(deps, 1))
    user = f"Question: {question}\n\nResults of the steps:\n{steps}\n\nNow give the final answer to the question."
    return [{"role": "system", "content": FINAL_SYSTEM}, {"role": "user", "content": user}]


FINAL_TEXT = "Combine the step results into the final answer."

# A coder model is right far more often when it writes a program that we run
# (measured on word problems: Qwen2.5-Coder-0.5B 10/24 in prose, 20/24 as a
# program). Units and clock times were its usual slips: this prompt and its one
# worked example (both conversions) took it from 26/48 to 32/48 here.
PROGRAM_SYSTEM = (
    "You solve the user's question by writing a short Python program. First convert every quantity to the unit "
    "the question asks for (hours to minutes, metres to centimetres, grams to kilograms, and clock times to minutes "
    "after midnight). Compute step by step with clear variable names. Put the final answer in a variable named "
    "`answer`: a number in the unit asked for, or for a clock time a string 'HH:MM' on a 24-hour clock. "
    "Reply with only the program in a ```python block."
)
PROGRAM_EXAMPLE_Q = (
    "A bus leaves at 9:50 and the ride takes 1 h 25 min. A rope is 3 m long and 40 cm is cut off. "
    "At what time does the bus arrive (hh:mm), and how many centimetres of rope are left?"
)
PROGRAM_EXAMPLE_A = (
    "```python\nleave = 9 * 60 + 50  # minutes after midnight\nride = 1 * 60 + 25  # minutes\narrive = leave + ride\n"
    "rope_cm = 3 * 100 - 40  # metres to centimetres first\n"
    "answer = f\"{arrive // 60 % 24:02d}:{arrive % 60:02d}, {rope_cm}\"\n```"
)

# A conversion between named units adds a second example that calls the sandbox's convert() (after the first,
# so both prompts share their prefix): Qwen2.5-Coder-0.5B remembers factors badly (17 miles became 17 * 5.25 km).
# On 20 conversions written for this (benchmarks/sets/conversions.jsonl, "dev"): 8/20 right with the number prompt
# alone, 18/20 with this example.
_CONVERT_NOTE = "# convert(value, from_unit, to_unit) knows every unit's factor: never write a factor yourself\n"
CONVERT_EXAMPLE = (
    "How many ounces are in 3 kilograms, and how many minutes are in 2.5 hours?",
    "```python\n" + _CONVERT_NOTE +
    "ounces = convert(3, \"kilograms\", \"ounces\")\nminutes = convert(2.5, \"hours\", \"minutes\")\n"
    "answer = f\"{ounces}, {minutes}\"\n```",
)


# A yes/no check on numbers: the program computes the check and keeps True or False. Measured on 29 such
# questions (12 of benchmarks/sets/yes_no.jsonl, 17 compound parts), Qwen2.5-Coder-0.5B: 26 right this way;
# the number prompt above got 1 (it wrote "No" as text or no `answer` at all).
CHECK_SYSTEM = (
    "You answer the user's yes/no question by writing a short Python program that checks it. Compute every "
    "quantity step by step with clear variable names, then put the result of the check in a variable named "
    "`answer`: True for yes, False for no. Reply with only the program in a ```python block."
)
CHECK_EXAMPLES = [(
    "Is 3/8 of 120 more than 40, and is 91 a prime number?",
    "```python\npart = 3 / 8 * 120\nfirst = part > 40\nn = 91\n"
    "is_prime = n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))\nanswer = first and is_prime\n```",
)]
# A comparison of measures in different units ("Is 5 miles longer than 8 kilometres?") converts first. On 12
# such questions written for this (dev), Qwen2.5-Coder-0.5B's greedy check program was right on 6 without this
# example (it compared 5 with 8) and 9 with it.
CHECK_CONVERT_EXAMPLE = (
    "Is 3 pounds heavier than 1.5 kilograms, and is 10 miles longer than 15 kilometres?",
    "```python\n" + _CONVERT_NOTE +
    "weight_kg = convert(3, \"pounds\", \"kilograms\")\nfirst = weight_kg > 1.5\n"
    "distance_km = convert(10, \"miles\", \"kilometres\")\nsecond = distance_km > 15\nanswer = first and second\n```",
)
# A choice between numbers the question computes: the program writes the options as values and keeps a letter.
# One example, picked by the question (the 0.5B copies the example's last line): measured on 7 computable
# questions of benchmarks/sets/choice.jsonl and 10 compound "Which is largest" parts, the matching example alone
# got 6/7 and 3/10 ("A) 3^6" became 3 ** 6 matched against the options), both examples 0/7 and 10/10.
PICK_SYSTEM = (
    "You answer the user's multiple-choice question by writing a short Python program. Compute the value the "
    "question asks about step by step with clear variable names, write the options as a dict from letter to "
    "value, and put the letter of the option that matches (or the largest or smallest, or the one with the "
    "property asked about, if that is asked) in a "
    "variable named `answer`. In the question x^y means x to the power y (x ** y in Python). Reply with only "
    "the program in a ```python block."
)
PICK_EXAMPLES = {"match": (
    "What is 15% of 80?\nA) 10\nB) 12\nC) 15\nD) 8\nAnswer with the letter of the correct option.",
    "```python\nvalue = 15 / 100 * 80\noptions = {\"A\": 10, \"B\": 12, \"C\": 15, \"D\": 8}\n"
    "answer = min(options, key=lambda letter: abs(options[letter] - value))\n```",
), "extreme": (
    "Which is smallest: A) 2^5, B) 5^2, C) 3^3? Answer with the letter.",
    "```python\noptions = {\"A\": 2 ** 5, \"B\": 5 ** 2, \"C\": 3 ** 3}\nanswer = min(options, key=options.get)\n```",
), "property": (
    "Which of these is divisible by 7?\nA) 45\nB) 50\nC) 63\nAnswer with the letter.",
    "```python\noptions = {\"A\": 45, \"B\": 50, \"C\": 63}\n"
    "matches = [letter for letter, value in options.items() if value % 7 == 0]\nanswer = matches[0]\n```",
)}
PROGRAM_SYSTEMS = {NUMBER: PROGRAM_SYSTEM, POLAR: CHECK_SYSTEM, CHOICE: PICK_SYSTEM}


def _program_examples(kind: str, question: str) -> list[tuple[str, str]]:
    if kind == CHOICE:
        pick = "extreme" if asks_extreme(question) else "property" if asks_property(question) else "match"
        return [PICK_EXAMPLES[pick]]
    examples = CHECK_EXAMPLES if kind == POLAR else [(PROGRAM_EXAMPLE_Q, PROGRAM_EXAMPLE_A)]
    if not asks_conversion(question):
        return examples
    return [*examples, CHECK_CONVERT_EXAMPLE if kind == POLAR else CONVERT_EXAMPLE]


def program_messages(prose: list[Message], kind: str = NUMBER) -> list[Message]:
    """The program-writing prompt for the same task as a prose prompt (its last user message),
    after the conversation's turns the prose prompt carries (between its system and last message).
    ``kind``: a yes/no check keeps True or False, a choice a letter; anything else a number or time."""
    kind = kind if kind in PROGRAM_SYSTEMS else NUMBER  # a clock time is written as a number's program is
    system, rest = _with_summary(PROGRAM_SYSTEMS[kind], prose)
    shots = [m for q, a in _program_examples(kind, prose[-1]["content"])
             for m in ({"role": "user", "content": q}, {"role": "assistant", "content": a})]
    return [
        {"role": "system", "content": system},
        *shots,
        *rest[:-1],
        {"role": "user", "content": prose[-1]["content"]},
    ]


# A sampled program that votes, asked for one line (``answer = <expression>``): ~17 tokens where a program
# with named steps and comments takes 45-55, so a vote sample costs a third of the greedy program. Replayed
# on 132 multi-step problems (benchmarks/compact_vote.py), one-line programs told right greedy programs from
# wrong ones better than sampled full programs did (these repeat the greedy program's misreadings). The line
# follows the question, so the prompt shares the greedy program's whole prefix (its KV is reused).
ONE_LINE = "\n\n(Write the whole computation as one line: answer = <expression>.)"


def line_messages(program: list[Message]) -> list[Message]:
    """The program prompt ``program`` asking for one line of computation (see ONE_LINE)."""
    return [*program[:-1], {"role": "user", "content": program[-1]["content"] + ONE_LINE}]


def program_answer(value: str, check: bool = False) -> str:
    """How a program's result reads as an answer (the program itself is kept as the working); a yes/no
    check's True or False reads as Yes or No."""
    if check and value in ("True", "False"):
        return "Yes." if value == "True" else "No."
    return f"The answer is {value}."


def prompt_version(messages: list[Message]) -> str:
    """A short hash of a prompt's template: every message but the last (the question-specific one)."""
    import hashlib
    import json

    fixed = messages[:-1] if len(messages) > 1 else messages
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:10]
