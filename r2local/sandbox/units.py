"""Unit conversion for sandboxed programs: ``convert(17, "miles", "km")``.

Small models know that a mile is about 1.6 km only some of the time: asked
"How many kilometres are in 17 miles?", Qwen2.5-Coder-0.5B wrote programs
multiplying by 5.25, 1000 or dividing by 1.6093 as often as by 1.609344. The
factors below are exact where a definition exists (the international inch,
foot, yard, mile and pound; US customary volumes), so a program that names its
units gets the right number without the model recalling a factor.

Pure computation over a fixed table: nothing here reaches the OS, so the
function is safe to bind in the sandbox's symbol table.
"""

from __future__ import annotations

import re

# dimension -> {unit names: factor to the dimension's base unit}
_TABLE: dict[str, dict[str, float]] = {
    "length": {  # metres
        "m metre metres meter meters": 1.0, "km kilometre kilometres kilometer kilometers": 1000.0,
        "cm centimetre centimetres centimeter centimeters": 0.01, "mm millimetre millimetres millimeter millimeters":
        0.001, "in inch inches": 0.0254, "ft foot feet": 0.3048, "yd yard yards": 0.9144,
        "mi mile miles": 1609.344, "nmi nautical_mile nautical_miles": 1852.0,
    },
    "mass": {  # kilograms
        "kg kilogram kilograms kilo kilos": 1.0, "g gram grams gramme grammes": 0.001,
        "mg milligram milligrams": 1e-6, "t tonne tonnes metric_ton metric_tons": 1000.0,
        "lb lbs pound pounds": 0.45359237, "oz ounce ounces": 0.028349523125, "st stone stones": 6.35029318,
        "ton tons short_ton short_tons": 907.18474,
    },
    "volume": {  # litres
        "l litre litres liter liters": 1.0, "ml millilitre millilitres milliliter milliliters": 0.001,
        "cl centilitre centilitres centiliter centiliters": 0.01, "dl decilitre decilitres deciliter deciliters": 0.1,
        "m3 cubic_metre cubic_metres cubic_meter cubic_meters": 1000.0,
        "cm3 cc cubic_centimetre cubic_centimetres cubic_centimeter cubic_centimeters": 0.001,
        "gal gallon gallons us_gallon us_gallons": 3.785411784, "imperial_gallon imperial_gallons uk_gallon": 4.54609,
        "qt quart quarts": 0.946352946, "pt pint pints": 0.473176473, "cup cups": 0.2365882365,
        "fl_oz fluid_ounce fluid_ounces": 0.0295735295625, "tbsp tablespoon tablespoons": 0.01478676478125,
        "tsp teaspoon teaspoons": 0.00492892159375,
    },
    "time": {  # seconds
        "s sec secs second seconds": 1.0, "min mins minute minutes": 60.0, "h hr hrs hour hours": 3600.0,
        "day days": 86400.0, "week weeks": 604800.0, "ms millisecond milliseconds": 0.001,
        "year years": 365 * 86400.0,
    },
    "area": {  # square metres
        "m2 sq_m square_metre square_metres square_meter square_meters": 1.0,
        "km2 sq_km square_kilometre square_kilometres square_kilometer square_kilometers": 1e6,
        "cm2 sq_cm square_centimetre square_centimetres square_centimeter square_centimeters": 1e-4,
        "ft2 sq_ft square_foot square_feet": 0.09290304, "in2 sq_in square_inch square_inches": 0.00064516,
        "yd2 sq_yd square_yard square_yards": 0.83612736, "mi2 sq_mi square_mile square_miles": 2589988.110336,
        "acre acres": 4046.8564224, "ha hectare hectares": 10000.0,
    },
    "speed": {  # metres per second
        "m/s mps metres_per_second meters_per_second": 1.0,
        "km/h kmh kph kilometres_per_hour kilometers_per_hour": 1000 / 3600,
        "mph mi/h miles_per_hour": 1609.344 / 3600, "kn knot knots": 1852 / 3600,
        "ft/s fps feet_per_second": 0.3048,
    },
}
_UNITS: dict[str, tuple[str, float]] = {
    name: (dim, factor) for dim, units in _TABLE.items() for names, factor in units.items() for name in names.split()
}
_CANONICAL = {name: names.split()[0] for units in _TABLE.values() for names in units for name in names.split()}
# Temperatures are not multiples of each other: (scale, offset) to kelvin.
_TEMPERATURE = {"c": (1.0, 273.15), "celsius": (1.0, 273.15), "centigrade": (1.0, 273.15),
                "f": (5 / 9, 273.15 - 32 * 5 / 9), "fahrenheit": (5 / 9, 273.15 - 32 * 5 / 9),
                "k": (1.0, 0.0), "kelvin": (1.0, 0.0), "kelvins": (1.0, 0.0)}


def unit_key(name: str) -> str:
    """A unit's name as the table spells it: "Square Feet" -> "square_feet", "°C" -> "c", "km²" -> "km2"."""
    key = name.strip().lower().replace("°", "").replace("²", "2").replace("³", "3").replace("^", "")
    key = re.sub(r"^degrees?[\s_]+", "", key.replace("sq.", "sq "))
    key = re.sub(r"\s*/\s*", "/", key)
    return re.sub(r"[\s-]+", "_", key.rstrip("."))


def _find(name: str) -> tuple[str, float] | None:
    """(dimension, factor) of a unit name, a plural "s" forgiven ("stones"), or None."""
    key = unit_key(name)
    return _UNITS.get(key) or (_UNITS.get(key[:-1]) if key.endswith("s") else None)


def _lookup(name: str) -> tuple[str, float]:
    found = _find(name)
    if found is None:
        raise ValueError(f"convert() does not know the unit {name!r}")
    return found


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (units of length, mass, volume, time, area, speed,
    temperature; names, plurals and abbreviations: "miles", "km", "lb", "°F", "square feet")."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"convert() needs a number, not {type(value).__name__}")
    if not isinstance(from_unit, str) or not isinstance(to_unit, str):
        raise TypeError("convert() needs the units as strings, like convert(17, 'miles', 'km')")
    src, dst = unit_key(from_unit), unit_key(to_unit)
    if src in _TEMPERATURE or dst in _TEMPERATURE:
        if src not in _TEMPERATURE or dst not in _TEMPERATURE:
            raise ValueError(f"convert() cannot turn {from_unit!r} into {to_unit!r}")
        (a, b), (c, d) = _TEMPERATURE[src], _TEMPERATURE[dst]
        result = (value * a + b - d) / c
    else:
        (dim_a, fa), (dim_b, fb) = _lookup(from_unit), _lookup(to_unit)
        if dim_a != dim_b:
            raise ValueError(f"convert() cannot turn {from_unit!r} ({dim_a}) into {to_unit!r} ({dim_b})")
        result = value * fa / fb
    # 30 * 0.3048 is 9.144000000000002 in floats; ten significant digits keep every real digit.
    return float(f"{result:.10g}")


# -- finding a conversion in a question ------------------------------------------------
# Names that are also everyday words or single letters ("in", "m", "st", "cup") count as units only right after
# a number ("12 in", "9 m"). Time units never make a question a conversion: the model does those well unaided,
# and rates ("8 hours a day for 5 days") are everywhere in word problems.
_BARE_OK = {n for n in _UNITS if len(n) > 3 and "/" not in n and _UNITS[n][0] != "time"}
_NUMBERED = {n for n in _UNITS if _UNITS[n][0] != "time"}


def _alternation(names: set[str]) -> str:
    return "|".join(re.escape(n).replace("_", r"[\s-]+") for n in sorted(names, key=len, reverse=True))


_BARE = re.compile(rf"(?<![\w/])(?:{_alternation(_BARE_OK)})(?![\w/])", re.IGNORECASE)
_AFTER_NUMBER = re.compile(rf"\d\s*(?:{_alternation(_NUMBERED)})(?![\w/])", re.IGNORECASE)
_SCALE = re.compile(r"\b(fahrenheit|celsius|centigrade|kelvin)\b|°\s*([CF])\b", re.IGNORECASE)


def asks_conversion(question: str) -> bool:
    """Whether ``question`` names two different units of one kind (miles and kilometres, cups and millilitres,
    Fahrenheit and Celsius): the questions whose programs should call ``convert`` instead of a remembered factor."""
    scales = {(m.group(1) or m.group(2))[0].lower().replace("g", "c") for m in _SCALE.finditer(question)}
    if len(scales) > 1:
        return True
    found = [m.group(0) for m in _BARE.finditer(question)]
    found += [re.sub(r"^\d\s*", "", m.group(0)) for m in _AFTER_NUMBER.finditer(question)]
    by_dimension: dict[str, set[str]] = {}
    for name in found:
        key = unit_key(name)
        if key in _UNITS:
            by_dimension.setdefault(_UNITS[key][0], set()).add(_CANONICAL[key])
    return any(len(units) > 1 for units in by_dimension.values())
