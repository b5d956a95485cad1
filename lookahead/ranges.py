"""Ranges of config values, written into the signatures that take them (``beam: PositiveInt``): the
config check (lookahead/train/signature.py) reads them there, before a run starts."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

PositiveInt = Annotated[int, Field(ge=1)]
Count = Annotated[int, Field(ge=0)]  # zero allowed
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, lt=1)]  # strictly between 0 and 1 (a split of the data)
Dropout = Annotated[float, Field(ge=0, lt=1)]  # a probability of dropping: 1 would drop everything
Probability = Annotated[float, Field(gt=0, le=1)]
Decay = Annotated[float, Field(ge=0, lt=1)]  # a momentum or moving-average rate: 1 would never forget
Betas = tuple[Decay, Decay]  # Adam-style (beta1, beta2)
