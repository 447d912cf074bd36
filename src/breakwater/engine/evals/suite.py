"""Reading an eval suite: YAML in a promptfoo-compatible subset -> a ``Suite`` of cases (docs/evals.md).

A case is one prompt with one test's variables: its request body (the prompt's messages, the
variables filled in by ``core/templates.py``, which cannot run code), its assertions
(``defaultTest``'s, then the test's) and its threshold. A test whose variables hold lists is
expanded to every combination, as promptfoo does. Every mistake is a ``SuiteError`` naming the
file and the key path (``suite.yaml: tests[2].assert[0].type: ...``); keys outside the subset are
refused by name, those that would run code saying so. The prompts are read by
``suite_prompts.py``, the providers by ``providers.py``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from breakwater.core.config.prompts import Prompt
from breakwater.engine.evals.asserts import Assertion, SuiteError, parse_assertion
from breakwater.engine.evals.providers import ProviderSpec, parse_provider
from breakwater.engine.evals.suite_prompts import CODE, PromptSpec, prompt_spec, read_relative, render, template

#: a test whose list variables expand to more cases than this is refused
MAX_CASES_PER_TEST = 1000

#: (``tags`` and ``metadata`` are accepted and unused: they describe the suite)
_TOP = ("description", "prompts", "providers", "tests", "defaultTest", "evaluateOptions", "tags", "metadata")
_TEST = ("description", "vars", "assert", "threshold", "options", "metadata")
#: promptfoo keys refused with the reason (any other unknown key is refused too)
_REFUSED = {
    "scenarios": "not supported: write each combination as a test (list variables expand too)",
    "redteam": "red-teaming is not supported",
    "derivedMetrics": f"not supported (it {CODE})",
    "extensions": CODE,
    "nunjucksFilters": f"a template filter {CODE}: prompts take {{{{ name }}}} placeholders only",
    "transform": CODE,
    "transformVars": CODE,
    "postprocess": CODE,
    "outputPath": "not supported: write results with --json or --junit",
    "env": "not supported: set the environment outside the suite",
    "sharing": "not supported",
    "provider": "not supported here: set the grading provider in options.provider (or --judge)",
    "rubricPrompt": "not supported: the rubric and factuality judges use Breakwater's own prompts",
}
CODE_TYPES = ("javascript", "python", "webhook", "ruby")


@dataclass(frozen=True, slots=True)
class Case:
    """One prompt with one test's variables, ready to send to each target."""

    #: stable across runs (prompt, description, variables): what baselines match cases by
    key: str
    description: str
    prompt: str
    vars: Mapping[str, Any]
    #: the chat-completions body without ``model`` (the target sets it)
    body: Mapping[str, Any]
    assertions: tuple[Assertion, ...]
    threshold: float | None
    #: the provider that grades llm-rubric and factuality (``options.provider``)
    judge: ProviderSpec | None
    #: where the case's test is (``tests[2]``)
    path: str


@dataclass(frozen=True, slots=True)
class Suite:
    source: str
    description: str
    prompts: tuple[PromptSpec, ...]
    providers: tuple[ProviderSpec, ...]
    cases: tuple[Case, ...]
    #: ``evaluateOptions.maxConcurrency``
    max_concurrency: int | None = None


def load_suite(path: str | Path, *, registry: Mapping[str, Prompt] | None = None) -> Suite:
    """The suite in the YAML file at ``path`` (``file://`` paths in it are relative to its folder).

    Args:
        registry: the configuration's prompts, when known: a registry prompt's request carries
            exactly the variables its version declares (else every variable of the test).

    Raises:
        SuiteError: the first mistake, its path starting with the file's name.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except OSError as exc:
        raise SuiteError(source, f"cannot read the suite: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}: line {mark.line + 1}, column {mark.column + 1}" if mark else source
        raise SuiteError(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    try:
        return build_suite(data, Path(path).parent, source, registry=registry)
    except SuiteError as exc:
        raise SuiteError(f"{source}: {exc.path}" if exc.path else source, exc.message) from None


def build_suite(data: Any, base: Path, source: str, *, registry: Mapping[str, Prompt] | None = None) -> Suite:
    """A suite from parsed YAML (``base``: the folder ``file://`` paths are relative to)."""
    if not isinstance(data, Mapping):
        raise SuiteError("", "a suite is a mapping (prompts, providers, tests, ...)")
    _known(data, _TOP, "")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise SuiteError("description", "must be a string")
    if "prompts" not in data:
        raise SuiteError("prompts", "required: the prompts every test is asked with")
    prompts = tuple(prompt_spec(raw, f"prompts[{i}]", base) for i, raw in _items(data["prompts"]))
    providers = tuple(parse_provider(raw, f"providers[{i}]") for i, raw in _items(data.get("providers", [])))
    default = data.get("defaultTest", {})
    if not isinstance(default, Mapping):
        raise SuiteError("defaultTest", "must be a mapping (vars, assert, threshold, options)")
    _known(default, _TEST, "defaultTest")
    tests = _tests(data.get("tests"), base)
    cases: list[Case] = []
    for i, test in enumerate(tests):
        cases.extend(_cases(test, f"tests[{i}]", default, prompts, base, registry))
    return Suite(source, description, prompts, providers, _unique(cases), _concurrency(data.get("evaluateOptions")))


def _unique(cases: list[Case]) -> tuple[Case, ...]:
    """The cases, a repeated key (the same prompt, description and variables) numbered ``KEY-2``, ..."""
    seen: dict[str, int] = {}
    out = []
    for case in cases:
        count = seen[case.key] = seen.get(case.key, 0) + 1
        out.append(case if count == 1 else dataclasses.replace(case, key=f"{case.key}-{count}"))
    return tuple(out)


def _known(raw: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
    for key in raw:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            reason = _REFUSED.get(key, f"not a supported key (supported: {', '.join(allowed)})")
            raise SuiteError(where, reason)


def _items(raw: Any) -> list[tuple[int, Any]]:
    """A list, or a single value taken as a list of one."""
    return list(enumerate(raw if isinstance(raw, list) else [raw]))


def _concurrency(raw: Any) -> int | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise SuiteError("evaluateOptions", "must be a mapping")
    _known(raw, ("maxConcurrency",), "evaluateOptions")
    value = raw.get("maxConcurrency")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise SuiteError("evaluateOptions.maxConcurrency", "must be an integer of at least 1")
    return value


# --- tests and cases ------------------------------------------------------------------------------


def _tests(raw: Any, base: Path) -> list[Mapping[str, Any]]:
    if raw is None:
        return [{}]  # promptfoo: no tests asks each prompt once, with no variables
    path = "tests"
    if isinstance(raw, str) and raw.startswith("file://"):
        if not raw.endswith((".yaml", ".yml", ".json")):
            raise SuiteError(path, f"{raw!r}: tests are read from a YAML or JSON file only")
        try:
            raw = yaml.safe_load(read_relative(base, raw, path))
        except yaml.YAMLError as exc:
            raise SuiteError(path, f"not valid YAML: {exc}") from None
    if not isinstance(raw, list):
        raise SuiteError(path, "a list of tests (or file://TESTS.yaml)")
    for i, test in enumerate(raw):
        if not isinstance(test, Mapping):
            raise SuiteError(f"tests[{i}]", "a test is a mapping (description, vars, assert, ...)")
        _known(test, _TEST, f"tests[{i}]")
    return raw


def _vars(raw: Any, path: str, base: Path) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) for k in raw):
        raise SuiteError(path, "vars are a mapping of names to values")

    def loaded(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("file://"):
            return read_relative(base, value, path)
        return value

    return {k: [loaded(v) for v in value] if isinstance(value, list) else loaded(value) for k, value in raw.items()}


def _text(value: Any) -> str:
    """A variable's value as a prompt shows it (booleans as JSON spells them, structures as JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _combinations(given: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    names = list(given)
    choices = [given[n] if isinstance(given[n], list) else [given[n]] for n in names]
    count = 1
    for c in choices:
        count *= len(c)
    if count == 0:
        raise SuiteError(path, "a list variable is empty: the test has no case")
    if count > MAX_CASES_PER_TEST:
        raise SuiteError(path, f"its list variables expand to {count} cases (at most {MAX_CASES_PER_TEST})")
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*choices)]


def _options(test: Mapping[str, Any], default: Mapping[str, Any], path: str) -> ProviderSpec | None:
    judge: ProviderSpec | None = None
    for where, options in (("defaultTest.options", default.get("options")), (f"{path}.options", test.get("options"))):
        if options is None:
            continue
        if not isinstance(options, Mapping):
            raise SuiteError(where, "must be a mapping")
        _known(options, ("provider",), where)
        if "provider" in options:
            judge = parse_provider(options["provider"], f"{where}.provider")
    return judge


def _threshold(test: Mapping[str, Any], default: Mapping[str, Any], path: str) -> float | None:
    for where, value in (
        (f"{path}.threshold", test.get("threshold")),
        ("defaultTest.threshold", default.get("threshold")),
    ):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise SuiteError(where, "must be a number between 0 and 1")
            return float(value)
    return None


def _assertions(
    test: Mapping[str, Any], default: Mapping[str, Any], path: str, texts: Mapping[str, str]
) -> tuple[Assertion, ...]:
    found: list[Assertion] = []
    for where, listed in (("defaultTest.assert", default.get("assert")), (f"{path}.assert", test.get("assert"))):
        if listed is None:
            continue
        if not isinstance(listed, list):
            raise SuiteError(where, "a list of assertions")
        for i, raw in enumerate(listed):
            found.append(_assertion(raw, f"{where}[{i}]", texts))
    return tuple(found)


def _assertion(raw: Any, path: str, texts: Mapping[str, str]) -> Assertion:
    if isinstance(raw, Mapping):
        for key in ("transform", "provider", "rubricPrompt"):
            if key in raw:
                raise SuiteError(f"{path}.{key}", _REFUSED[key])
        kind = raw.get("type")
        if isinstance(kind, str) and kind.removeprefix("not-") in CODE_TYPES:
            raise SuiteError(f"{path}.type", f"a {kind} assertion {CODE}: use the declarative types")
        value = raw.get("value")
        if isinstance(value, str):
            raw = {**raw, "value": render(template(value, f"{path}.value"), texts, f"{path}.value", "the value")}
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            rendered = [
                render(template(v, f"{path}.value[{j}]"), texts, f"{path}.value[{j}]", "the value")
                for j, v in enumerate(value)
            ]
            raw = {**raw, "value": rendered}
    return parse_assertion(raw, path)


def _cases(
    test: Mapping[str, Any],
    path: str,
    default: Mapping[str, Any],
    prompts: Sequence[PromptSpec],
    base: Path,
    registry: Mapping[str, Prompt] | None,
) -> list[Case]:
    given = {**_vars(default.get("vars"), "defaultTest.vars", base), **_vars(test.get("vars"), f"{path}.vars", base)}
    description = test.get("description", default.get("description", ""))
    if not isinstance(description, str):
        raise SuiteError(f"{path}.description", "must be a string")
    judge = _options(test, default, path)
    threshold = _threshold(test, default, path)
    combos = _combinations(given, f"{path}.vars")
    cases = []
    for values in combos:
        texts = {k: _text(v) for k, v in values.items()}
        assertions = _assertions(test, default, path, texts)
        shown = description or path
        if len(combos) > 1 or not description:
            shown += " " + orjson.dumps(values, default=str).decode() if values else ""
        for pi, prompt in enumerate(prompts):
            body = _body(prompt, values, texts, f"{path}.vars", f"prompts[{pi}]", registry)
            identity = orjson.dumps([prompt.label, description, values], default=str, option=orjson.OPT_SORT_KEYS)
            key = hashlib.sha256(identity).hexdigest()[:16]
            cases.append(Case(key, shown, prompt.label, values, body, assertions, threshold, judge, path))
    return cases


def _body(
    prompt: PromptSpec,
    values: Mapping[str, Any],
    texts: Mapping[str, str],
    path: str,
    prompt_path: str,
    registry: Mapping[str, Prompt] | None,
) -> dict[str, Any]:
    if prompt.registry is None:
        messages = [
            {"role": role, "content": render(segments, texts, path, prompt_path)} for role, segments in prompt.messages
        ]
        return {"messages": messages}
    name, version = prompt.registry
    variables = dict(values)
    if registry is not None:
        spec = registry.get(name)
        if spec is None:
            raise SuiteError(prompt_path, f"the configuration has no prompt {name!r}")
        chosen = spec.versions.get(spec.default_version if version is None else version)
        if chosen is None:
            raise SuiteError(prompt_path, f"prompt {name!r} has no version {version}")
        variables = {k: v for k, v in values.items() if k in chosen.variables}
    reference: dict[str, Any] = {"id": name, "variables": variables}
    if version is not None:
        reference["version"] = version
    return {"messages": [], "prompt": reference}
