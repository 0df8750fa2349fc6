"""The answer-kind classifier on a hand-written list (written before the rules were),
and short answers read and compared as values."""

from __future__ import annotations

import pytest

from r2local.engine.answers import CHOICE, CLOCK, NUMBER, POLAR, SHORT, TEXT, agreement, answer_kind, read_answer, same
from r2local.engine.kinds import asks_extreme, computable, conversation_kind

# Hand-written, none from any benchmark. The kind a careful reader would give each.
QUESTIONS = [
    ("What is the capital of Australia?", SHORT),
    ("Who wrote Pride and Prejudice?", SHORT),
    ("Which planet is closest to the sun?", SHORT),
    ("Name the longest river in Africa.", SHORT),
    ("Who painted the Mona Lisa?", SHORT),
    ("Where is the Taj Mahal?", SHORT),
    ("What is the chemical symbol for gold?", SHORT),
    ("Which country has the largest population?", SHORT),
    ("Who was the first person to walk on the moon?", SHORT),
    ("What language is spoken in Brazil?", SHORT),
    ("What is the largest ocean on Earth?", SHORT),
    ("In which city is the Colosseum?", SHORT),
    ("What does DNA stand for?", SHORT),
    ("Which element has the symbol Fe?", SHORT),
    ("What is the currency of Japan?", SHORT),
    ("When was the Berlin Wall torn down?", SHORT),
    ("Who discovered penicillin?", SHORT),
    ("What is the opposite of 'ancient'?", SHORT),
    ("Which element has atomic number 6?", SHORT),  # a number in the question, a name for the answer
    ("Who was the US president in 1865?", SHORT),
    ("Which country hosted the 2016 Summer Olympics?", SHORT),
    ("Write a short poem about autumn.", TEXT),
    ("Explain how a rainbow forms.", TEXT),
    ("Describe the water cycle.", TEXT),
    ("Summarise the plot of Hamlet in three sentences.", TEXT),
    ("Translate 'good morning' into Spanish.", TEXT),
    ("Why is the sky blue?", TEXT),
    ("What is photosynthesis?", TEXT),
    ("Who was Napoleon?", TEXT),
    ("What are the main causes of inflation?", TEXT),
    ("How does a refrigerator keep food cold?", TEXT),
    ("Give me three tips for sleeping better.", TEXT),
    ("Compare cats and dogs as pets.", TEXT),
    ("Tell me a joke about programmers.", TEXT),
    ("What is the difference between weather and climate?", TEXT),
    ("What is 120 divided by 8?", NUMBER),
    ("How many legs does a spider have?", NUMBER),
    ("A shirt costs $25 and is 20% off. What is the sale price?", NUMBER),
    ("How tall is Mount Everest in metres?", NUMBER),
    ("What is 3/4 plus 1/8?", NUMBER),
    ("Which number is larger, 7 or 9?", NUMBER),
    ("What year did the Apollo 11 crew land on the Moon, 1968 or 1969?", NUMBER),
    ("Which is bigger, 3/4 or 5/8?", NUMBER),
    ("Is the Pacific Ocean larger than the Atlantic?", POLAR),
    ("Can penguins fly? Answer yes or no.", POLAR),
    ("Does water boil at 100 degrees Celsius at sea level?", POLAR),
    ("A train leaves at 9:45 and the trip takes 2 hours 30 minutes. At what time does it arrive?", CLOCK),
    ("The meeting starts at 14:10 and lasts 50 minutes. When does it end (hh:mm)?", CLOCK),
    ("Which is a mammal?\nA) shark\nB) dolphin\nC) trout\nAnswer with the letter of the correct option.", CHOICE),
    ("Which gas do plants absorb?\nA) oxygen\nB) carbon dioxide\nC) helium", CHOICE),
]


def test_the_classifier_on_the_hand_written_list():
    misses = [(q, want, answer_kind(q)) for q, want in QUESTIONS if answer_kind(q) != want]
    accuracy = 1 - len(misses) / len(QUESTIONS)
    assert len(QUESTIONS) >= 30
    assert accuracy >= 0.9, misses


@pytest.mark.parametrize("a, b, question", [
    ("The capital of Australia is Canberra.", "Canberra", "What is the capital of Australia?"),
    ("Canberra is the capital of Australia.", "**Canberra**", "What is the capital of Australia?"),
    ("The answer is Canberra.", "canberra.", "What is the capital of Australia?"),
    ("William Shakespeare wrote Hamlet.", "Shakespeare", "Who wrote Hamlet?"),
    ("It is the USA.", "The United States", "Which country has the most Nobel prizes?"),
    ("Mount Everest", "Mt. Everest", "What is the highest mountain on Earth?"),
    ("São Paulo.", "Sao Paulo", "What is the largest city in Brazil?"),
    ("J. K. Rowling wrote it.", "J.K. Rowling", "Who wrote Harry Potter?"),
    # SmolLM2-135M's sampled replies (demo pool): a clause after the answer is not part of it.
    ("The capital of Australia is Canberra, a vibrant city that seamlessly blends", "The capital of Australia is "
     "Canberra.", "What is the capital of Australia?"),
    ("The capital of Australia is Canberra, which is a vibrant cit", "Canberra", "What is the capital of Australia?"),
    ("The capital: Canberra (in the ACT).", "Canberra", "What is the capital of Australia?"),
    # Qwen2.5-Coder-0.5B's samples (demo pool): the same name in other frames.
    ("Pride and Prejudice was written by Jane Austen.", "The writer of Pride and Prejudice was Jane Austen.",
     "Who wrote Pride and Prejudice?"),
    ("The author of Pride and Prejudice is Jane Austen.", "Jane Austen", "Who wrote Pride and Prejudice?"),
    ("Canberra is the capital city of Australia.", "The capital of Australia is Canberra.",
     "What is the capital of Australia?"),
    ("Canada's capital is Ottawa.", "The capital of Canada is Ottawa.", "What is the capital of Canada?"),
    ("The closest planet to the sun is Mercury.", "Mercury", "Which planet is closest to the sun?"),
])
def test_short_answers_that_agree(a, b, question):
    assert same(read_answer(a, SHORT, question), read_answer(b, SHORT, question))


@pytest.mark.parametrize("a, b, question", [
    ("The capital of Australia is Sydney.", "The capital of Australia is Canberra.", "What is the capital of Australia?"),
    ("Canberra, not Sydney.", "Sydney", "What is the capital of Australia?"),
    ("Jupiter", "Saturn", "Which planet is the largest?"),
    ("Sydney", "The Sydney Opera House", "What is the most famous building in Australia?"),
    ("The capital of Canada is Ottawa.", "The capital of Canada is Montreal.", "What is the capital of Canada?"),
    ("The planet closest to the sun is Mars.", "The planet that is closest to the sun is Venus.",
     "Which planet is closest to the sun?"),
])
def test_short_answers_that_differ(a, b, question):
    assert not same(read_answer(a, SHORT, question), read_answer(b, SHORT, question))


def test_short_answer_value_and_vote():
    q = "What is the capital of Australia?"
    assert read_answer("The capital of Australia is Canberra.", SHORT, q).value == "canberra"
    assert read_answer("Sure! Canberra. It was chosen over Sydney and Melbourne.", SHORT, q).value == "canberra"
    votes = [read_answer(t, SHORT, q) for t in ("Sydney.", "The capital is Canberra.", "It is Sydney.")]
    assert agreement(votes).with_answer == pytest.approx(2 / 3)


@pytest.mark.parametrize("question, before, want", [
    ("What is double that?", SHORT, NUMBER),  # its own wording names a number
    ("And in miles?", NUMBER, NUMBER),  # says nothing of its kind: the turn before does
    ("What about Brazil?", SHORT, SHORT),
    ("Who wrote it?", TEXT, SHORT),  # its own kind stands when it has one
    ("Explain that.", NUMBER, TEXT),  # asks for writing: no vote, whatever came before
    ("What is photosynthesis?", NUMBER, TEXT),  # stands on its own (no reference back)
    ("And what about the one after that?", CLOCK, CLOCK),
])
def test_a_follow_up_takes_the_earlier_turns_kind_only_where_its_wording_says_nothing(question, before, want):
    assert answer_kind(question, before) == want


def test_a_conversations_kind_is_read_turn_by_turn():
    turns = ["How many km is 5 miles?", "And in metres?", "And what about 7 miles?"]
    assert conversation_kind(turns) == NUMBER
    assert conversation_kind(["What is the capital of Canada?", "And of Brazil?"]) == SHORT
    assert conversation_kind([]) is None


@pytest.mark.parametrize("question, want", [
    ("Is 221 a prime number?", True), ("Is 3/8 greater than 0.4?", True), ("Is 100 divisible by 8?", True),
    ("Is 15% of 200 equal to 30?", True), ("Is 2 to the power of 10 greater than 1000?", True),
    ("Is 49 an even number?", True),
    ("Is 5 miles longer than 8 kilometres?", True), ("Is 100 degrees Fahrenheit hotter than 40 degrees Celsius?", True),
    ("Is the Nile longer than 6000 km?", False), ("Is Moscow colder than 30 degrees Fahrenheit in winter?", False),
    ("Did World War II end in 1945?", False), ("Does a leap year have 366 days?", False),
    ("Are there 60 seconds in an hour?", False), ("Explain why 221 is not a prime number.", False),
    ("What is 9 times 8?", False), ("Is Canberra the capital of Australia?", False),
    ("What is 15% of 80?\nA) 10\nB) 12\nC) 15\nD) 8\nAnswer with the letter of the correct option.", True),
    ("Which is largest: A) 3^6, B) 9^3, C) 5^4? Answer with the letter.", True),
    ("How many continents are there?\nA) 5\nB) 6\nC) 7\nD) 8\nAnswer with the letter of the correct option.", False),
    ("Which of these is a prime number?\nA) 21\nB) 27\nC) 29\nD) 33\nAnswer with the letter.", False),
    ("What is the capital of Canada?\nA) Toronto\nB) Ottawa\nAnswer with the letter.", False),
    ("Which is bigger? A) 2/3 B) 0.6", True), ("Which is larger?\nA. 2^10\nB. 10^3", True),
    ("Which planet is bigger? A) Mars B) Venus", False),
    ("Which of these is divisible by 9? A) 56 B) 72 C) 85", True), ("Which of these is odd?\nA. 24\nB. 47", True),
])
def test_a_yes_no_check_on_numbers_is_computable(question, want):
    assert computable(question) is want


def test_a_choice_asks_for_the_extreme_option_only_in_its_stem():
    assert asks_extreme("Which is largest: A) 3^6, B) 9^3? Answer with the letter.")
    assert not asks_extreme("What is 15% of 80?\nA) the largest\nB) 12")
