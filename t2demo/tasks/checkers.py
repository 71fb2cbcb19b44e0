"""Answer parsing and checkers shared by tasks: a new task picks one instead of writing its own.

Each checker takes (example, response) and says whether the model's full response is correct; the
parsers (boxed answers, last numbers, chosen options) are public because the classifier and the
reports read answers the same way.
"""

from __future__ import annotations

import re
import string

from t2demo.tasks.base import Example


def extract_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} (braces may nest), or None if there is none or it is unclosed."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip()
    return None


def last_number(text: str) -> str | None:
    """The last number in `text` (thousands separators dropped): a worked answer ends with its result."""
    numbers = re.findall(r"-?\d+(?:\.\d+)?", re.sub(r"(?<=\d),(?=\d{3})", "", text))
    return numbers[-1] if numbers else None


def check_number(example: Example, response: str) -> bool:
    """The response's last number equals the numeric reference (math word problems)."""
    found = last_number(response)
    return found is not None and float(found) == float(example.reference)


def final_answer(text: str) -> str:
    """The reply's last 'answer is X' or 'Answer: X' phrase, else the whole reply (a bare short answer)."""
    found = re.findall(r"answer(?: is|:)([^.!?\n]*)", text, flags=re.IGNORECASE)
    return found[-1] if found else text


def options_of(prompt: str) -> dict[str, str]:
    """Letter -> option text, from the prompt's line 'Options: warm (A), dry (B), wet (C), cold (D).'"""
    line = re.search(r"^Options: (.*)$", prompt, flags=re.MULTILINE)
    pairs = re.findall(r"\s*([^,]+?) \(([A-D])\)", line.group(1)) if line else []
    return {letter: text for text, letter in pairs}


def _option_key(text: str) -> str:
    return " ".join(text.lower().translate(str.maketrans("", "", string.punctuation)).split())


def chosen_letter(text: str, options: dict[str, str]) -> str | None:
    """The letter a reply chooses, from its last 'answer is X' or 'Answer: X' (else the whole reply).

    The model answers with the option text, because tiny models bind option letters poorly. X may be
    a lone capital letter, or exactly one option's text (case and punctuation ignored). A trailing
    letter tag, as in 'cold (A)', is ignored: the text decides. Anything else chooses nothing.
    """
    phrase = final_answer(text)
    lone = re.fullmatch(r"\W*([A-D])\W*", phrase)
    if lone:
        return lone.group(1)
    key = _option_key(re.sub(r"\(\s*[A-D]\s*\)\W*$", "", phrase))
    matches = [letter for letter, option in options.items() if _option_key(option) == key]
    return matches[0] if len(matches) == 1 else None


def check_letter(example: Example, response: str) -> bool:
    """The option the response chooses is the reference letter (multiple choice)."""
    return chosen_letter(response, options_of(example.prompt)) == example.reference


def normalize(text: str) -> str:
    """VQA-style normalisation: lowercase, no punctuation, no articles, single spaces."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def check_exact(example: Example, response: str) -> bool:
    """The normalised final answer is the normalised reference (short open answers, as in VQA)."""
    return normalize(final_answer(response)) == normalize(example.reference)


def check_nonempty(example: Example, response: str) -> bool:
    """Any non-blank response passes (smalltalk has no single right reply)."""
    return bool(response.strip())


def check_contains(example: Example, response: str) -> bool:
    """The normalised reference appears as whole words in the normalised response (for a user's own
    few-shot examples, whose answers may be embedded in a sentence)."""
    reference = normalize(example.reference)
    return bool(reference) and f" {reference} " in f" {normalize(response)} "
