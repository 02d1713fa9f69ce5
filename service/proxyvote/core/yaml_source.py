"""YAML documents that remember where each value was written.

Policies and the taxonomy are YAML; their validation errors must name the file,
line and column, so the loader keeps a map from each value's path to its mark.
Anchors and aliases are refused (no policy needs them, and they are how a small
document expands into a huge one); so are duplicate keys, which YAML otherwise
resolves silently to the last value.
"""

from __future__ import annotations

from dataclasses import dataclass

import jsonschema
import yaml

from proxyvote.errors import PolicyInvalid, PolicyProblem

Path = tuple[str | int, ...]
MAX_SOURCE_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class YamlSource:
    filename: str
    data: object
    marks: dict[Path, tuple[int, int]]

    def where(self, path: Path) -> tuple[int, int]:
        """1-based (line, column) of the value at ``path``, or of its nearest parent."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, (0, 0))

    def problem(self, path: Path, message: str, rule_id: str = "") -> PolicyProblem:
        line, column = self.where(path)
        return PolicyProblem(
            file=self.filename,
            line=line,
            column=column,
            message=message,
            rule_id=rule_id,
            path=format_path(path),
        )


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# libyaml's parser when PyYAML was built with it (same nodes and marks, several times faster).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, filename: str) -> YamlSource:
    """Parses one YAML document; raises PolicyInvalid with a location on any error."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise PolicyInvalid(
            [PolicyProblem(filename, 0, 0, f"document is larger than {MAX_SOURCE_BYTES} bytes")]
        )
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise PolicyInvalid(
            [PolicyProblem(filename, line, column, f"YAML syntax error: {exc.problem}")]
        ) from exc
    except yaml.YAMLError as exc:
        raise PolicyInvalid([PolicyProblem(filename, 0, 0, f"YAML error: {exc}")]) from exc
    if node is None:
        raise PolicyInvalid([PolicyProblem(filename, 0, 0, "document is empty")])
    marks: dict[Path, tuple[int, int]] = {}
    problems: list[PolicyProblem] = []
    data = _build(node, (), marks, problems, filename, set())
    if problems:
        raise PolicyInvalid(problems)
    return YamlSource(filename, data, marks)


def _build(node, path, marks, problems, filename, seen):
    marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if id(node) in seen:  # only an alias makes a node appear twice
        problems.append(PolicyProblem(filename, *marks[path], "anchors and aliases are not allowed"))
        return None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(PolicyProblem(filename, *marks[path], "keys must be plain text"))
                continue
            key = key_node.value
            if key in out:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                problems.append(PolicyProblem(filename, line, col, f"duplicate key {key!r}"))
                continue
            out[key] = _build(value_node, path + (key,), marks, problems, filename, seen)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(child, path + (i,), marks, problems, filename, seen) for i, child in enumerate(node.value)
        ]
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node)
    except yaml.YAMLError as exc:
        problems.append(PolicyProblem(filename, *marks[path], f"bad value: {exc}"))
        return None
    finally:
        loader.dispose()


def schema_problems(source: YamlSource, schema: dict, rule_id_at=lambda path: "") -> list[PolicyProblem]:
    """Every JSON-schema violation in the document, located and in document order."""
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in validator.iter_errors(source.data):
        path = tuple(error.absolute_path)
        problems.append(source.problem(path, _describe(error), rule_id_at(path)))
    problems.sort(key=lambda p: (p.line, p.column, p.message))
    return problems


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown key(s)")
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"{error.instance!r} is not one of: {allowed}"
    return error.message
