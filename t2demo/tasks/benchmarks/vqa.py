"""TextVQA and OK-VQA: the VQA soft accuracy over the annotators' ten answers.

Score of an answer: min(1, matching annotators / 3), averaged over the ten ways of leaving one
annotator out (the official VQA metric: 1/3 of a point per agreeing annotator, 0.3 for one, 0.6 for
two, 0.9 for three, 1 from four). Answers and annotations are normalized as the TextVQA / VQA EvalAI
evaluator does (its answer processor, applied to both sides): lower case, punctuation dropped or
made a space, full stops not followed by a digit dropped, number words as digits (none -> 0),
articles dropped, apostrophe-less contractions restored (dont -> don't).

Prompt: the question, then LLaVA-1.5's short-answer line; the authors released no VQA code, so
this follows the LLaVA evaluation their VQA model (LLaVA-Next) comes from. TextVQA's test answers
are withheld (EvalAI scores them): its test split is refused. OK-VQA has train and val(2014); the
hub copy, lmms-lab/OK-VQA, holds val2014 only.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence

from t2demo.tasks.base import Example
from t2demo.tasks.benchmarks.benchmark import Benchmark

PROMPT = "{question}\nAnswer the question using a single word or phrase."
PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?",
               "!")
NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
           "seven": "7", "eight": "8", "nine": "9", "ten": "10"}
ARTICLES = {"a", "an", "the"}
# The evaluator's contractions, by their written form; it maps each form minus any one apostrophe back to it.
CONTRACTED = (
    "ain't", "aren't", "can't", "could've", "couldn't", "couldn't've", "didn't", "doesn't", "don't", "hadn't",
    "hadn't've", "hasn't", "haven't", "he'd", "he'd've", "he's", "how'd", "how'll", "how's", "I'd've", "I'm",
    "I've", "isn't", "it'd", "it'd've", "it'll", "ma'am", "mightn't", "mightn't've", "might've", "mustn't",
    "must've", "needn't", "not've", "o'clock", "oughtn't", "'ow's'at", "shan't", "she'd've", "should've",
    "shouldn't", "shouldn't've", "somebody'd", "somebody'd've", "somebody'll", "somebody's", "someone'd",
    "someone'd've", "someone'll", "someone's", "something'd", "something'd've", "something'll", "that's", "there'd",
    "there'd've", "there're", "there's", "they'd", "they'd've", "they'll", "they're", "they've", "'twas", "wasn't",
    "we'd've", "we've", "weren't", "what'll", "what're", "what's", "what've", "when's", "where'd", "where's",
    "where've", "who'd", "who'd've", "who'll", "who's", "who've", "why'll", "why're", "why's", "won't", "would've",
    "wouldn't", "wouldn't've", "y'all", "y'all'll", "y'all'd've", "you'd", "you'd've", "you'll", "you're", "you've",
)
CONTRACTIONS = {form[:i] + form[i + 1:]: form for form in CONTRACTED for i, ch in enumerate(form) if ch == "'"}
FULL_STOP = re.compile(r"\.(?!\d)")  # the official pattern's other half, (?!<=\d), is a typo that tests nothing


def vqa_normalize(answer: str) -> str:
    """An answer as the VQA evaluator compares it."""
    text = answer.lower().replace(",", "").replace("?", "").replace("'s", " 's")
    text = text.replace("\n", " ").replace("\t", " ").strip()
    spaced = text  # whether a mark touches a space is judged on the text before any replacement
    for mark in PUNCTUATION:
        text = text.replace(mark, "" if (mark + " " in spaced or " " + mark in spaced) else " ")
    words = [NUMBERS.get(w, w) for w in FULL_STOP.sub("", text).split()]
    return " ".join(CONTRACTIONS.get(w, w) for w in words if w not in ARTICLES)


def soft_accuracy(answer: str, annotators: Sequence[str]) -> float:
    """The VQA accuracy of `answer`: min(1, others agreeing / 3) averaged over leaving each annotator out."""
    given, gold = vqa_normalize(answer), [vqa_normalize(a) for a in annotators]
    agreeing = sum(g == given for g in gold)
    return sum(min(1.0, (agreeing - (g == given)) / 3) for g in gold) / len(gold)


def annotators_of(row: Mapping) -> tuple[str, ...]:
    """The annotators' answers: strings (TextVQA, lmms-lab) or {"answer": ...} records (HuggingFaceM4/OK-VQA)."""
    answers = tuple(a["answer"] if isinstance(a, Mapping) else a for a in row.get("answers") or ())
    if not answers:
        raise ValueError("no annotators' answers (a split whose answers are withheld cannot be scored)")
    return answers


def to_example(row: Mapping) -> Example:
    """The question with the short-answer line; the most given answer as reference, all of them in meta."""
    answers = annotators_of(row)
    reference = Counter(answers).most_common(1)[0][0]
    return Example(PROMPT.format(question=row["question"].strip()), reference, reference, "", row["image"],
                   meta={"answers": answers})


def score_vqa(examples: Sequence[Example], responses: Sequence[str]) -> list[float]:
    """Each response's soft accuracy against its example's annotators."""
    return [soft_accuracy(r, e.meta["answers"]) for e, r in zip(examples, responses)]


TEXTVQA = Benchmark("textvqa", "vqa", 32, "lmms-lab/textvqa", (None,), ("train", "validation", "test"),
                    to_example, score_vqa, metric="VQA accuracy", vision=True, hidden=("test",))
OKVQA = Benchmark("okvqa", "vqa", 32, "lmms-lab/OK-VQA", (None,), ("train", "validation"), to_example, score_vqa,
                  metric="VQA accuracy", vision=True, hub_splits=(("validation", "val2014"),))
