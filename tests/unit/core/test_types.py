"""Input types, name and version validation, model and replica ids."""

from __future__ import annotations

import pytest

from clipper.core.exceptions import InvalidInputType, InvalidName
from clipper.core.types import (
    InputType,
    ModelId,
    ReplicaId,
    parse_input_type,
    validate_name,
    validate_version,
)

ALIASES = {
    InputType.BYTES: ["bytes", "byte", "b"],
    InputType.INTEGERS: ["integers", "ints", "integer", "int", "i"],
    InputType.FLOATS: ["floats", "float", "f"],
    InputType.DOUBLES: ["doubles", "double", "d"],
    InputType.STRINGS: ["strings", "string", "str", "strs", "s"],
    InputType.TENSORS: ["tensors", "tensor"],
}
ALIAS_CASES = [(alias, member) for member, aliases in ALIASES.items() for alias in aliases]


@pytest.mark.parametrize(("alias", "member"), ALIAS_CASES)
def test_every_alias_parses_to_its_canonical_type(alias: str, member: InputType) -> None:
    assert parse_input_type(alias) is member


@pytest.mark.parametrize(
    ("spelling", "member"),
    [("  Doubles ", InputType.DOUBLES), ("INTS", InputType.INTEGERS), ("Str\n", InputType.STRINGS)],
)
def test_parse_input_type_ignores_case_and_surrounding_space(
    spelling: str, member: InputType
) -> None:
    assert parse_input_type(spelling) is member


def test_parse_input_type_passes_a_member_through() -> None:
    assert parse_input_type(InputType.FLOATS) is InputType.FLOATS


@pytest.mark.parametrize("value", ["tensor7", "", "doubles[]", None, 1, b"bytes"])
def test_parse_input_type_refuses_anything_else(value: object) -> None:
    with pytest.raises(InvalidInputType, match="expected one of: b, byte, bytes"):
        parse_input_type(value)


def test_only_the_array_types_are_numeric() -> None:
    numeric = {member for member in InputType if member.is_numeric}

    assert numeric == {InputType.INTEGERS, InputType.FLOATS, InputType.DOUBLES}


@pytest.mark.parametrize("name", ["a", "7", "my-model", "a1-b2-c3", "1abc", "x" * 63])
def test_valid_names_are_returned(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-a", "a-", "A", "Model", "a_b", "a.b", "a b", "a/b", "é", None, 5]
)
def test_invalid_names_are_refused_naming_what_was_checked(name: object) -> None:
    with pytest.raises(InvalidName, match="Invalid app name"):
        validate_name(name, "app name")


def test_a_name_over_63_characters_is_refused() -> None:
    with pytest.raises(InvalidName, match="at most 63 characters"):
        validate_name("x" * 64)


def test_a_name_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidName):
        validate_name("model\n")


@pytest.mark.parametrize(("version", "expected"), [(3, "3"), (0, "0"), ("v1", "v1"), ("2", "2")])
def test_versions_are_stringified_and_validated(version: object, expected: str) -> None:
    assert validate_version(version) == expected


@pytest.mark.parametrize("version", [True, 1.5, None, [1], -1, "V1", "", "1.0"])
def test_invalid_versions_are_refused(version: object) -> None:
    with pytest.raises(InvalidName, match="Invalid version"):
        validate_version(version)


def test_ids_print_as_colon_separated_names() -> None:
    model = ModelId("m", "1")

    assert (str(model), str(ReplicaId(model, 2))) == ("m:1", "m:1:2")
