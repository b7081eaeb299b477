"""Option validation, one table run against both cores (precond and precond_jax): a bad option is one exception at
construction, on one line, naming the option, and never a later step() failure.

Parameter and parameter-group validation belongs to the torch core (tests/test_precond_inputs.py); the JAX core's
state validation is in tests/test_precond_jax.py; the accepted options running is test_precond_inputs.py's
``test_every_honoured_option_is_accepted_and_runs``.
"""

import pytest
import torch

import precond
import precond_jax
from precond.config import HONOURED
from precond.registry import SPECS

NAN, INF = float("nan"), float("inf")
KRON = tuple(SPECS)  # every Kronecker variant, by its preset's name
EVERY = (*KRON, "nadamw")


def build_torch(name: str, options: dict):
    cls = precond.NAdamW if name == "nadamw" else getattr(precond, SPECS[name].optimizer)
    return cls([torch.nn.Parameter(torch.zeros(3, 3)), torch.nn.Parameter(torch.zeros(3))], **options)


def build_jax(name: str, options: dict):
    options = dict(options)
    return getattr(precond_jax, name)(options.pop("lr", 1e-2), **options)


CORES = {"torch": build_torch, "jax": build_jax}
# The owner each core's messages name, for the refusal that lists what a variant accepts.
OWNER = {"torch": lambda name: SPECS[name].optimizer, "jax": lambda name: f"precond_jax.{name}"}


def refused(name: str, option: str, value) -> tuple:
    """An option the variant does not honour (whatever its value): refused with the list of those it does."""
    return name, {option: value}, f"({name}) does not use {option}; it accepts "


# (optimizer, bad options, a fragment of the one-line error both cores give[, the exception types]). "lr" is the
# learning rate: torch's ``lr=``, JAX's positional ``learning_rate``.
CASES = [
    # the hyperparameters every optimizer checks
    *[
        (name, options, fragment)
        for name in EVERY
        for options, fragment in [
            ({"lr": NAN}, "=nan must be a finite number >= 0.0"),
            ({"lr": INF}, "=inf must be a finite number >= 0.0"),
            ({"lr": -1e-3}, "=-0.001 must be a finite number >= 0.0"),
            ({"weight_decay": NAN}, "weight_decay=nan must be a finite number"),
            ({"weight_decay": INF}, "weight_decay=inf must be a finite number"),
            ({"weight_decay": -1.0}, "weight_decay=-1.0 must be a finite number"),
            ({"eps": NAN}, "eps=nan must be a finite number"),
            ({"eps": INF}, "eps=inf must be a finite number"),
            ({"betas": (0.9,)}, "betas=(0.9,) must be two numbers"),
            ({"betas": (0.9, 0.99, 0.9)}, "betas=(0.9, 0.99, 0.9) must be two numbers"),
            ({"betas": (1.0, 0.99)}, "betas=(1.0, 0.99) must be two numbers, beta1 in [0, 1)"),
            ({"betas": (1.5, 0.9)}, "betas=(1.5, 0.9) must be two numbers, beta1 in [0, 1)"),
            ({"betas": (-0.1, 0.99)}, "betas=(-0.1, 0.99) must be two numbers"),
            ({"betas": (0.9, 1.5)}, "betas=(0.9, 1.5) must be two numbers"),
            ({"betas": (0.9, NAN)}, "betas=(0.9, nan) must be two numbers"),
            ({"nonfinite": "ignore"}, "nonfinite='ignore' must be one of ('raise', 'skip')"),
        ]
    ],
    ("nadamw", {"betas": (0.9, 1.0)}, "beta2 in [0, 1)"),  # NAdamW has no plain sums
    ("nadamw", {"no_such_option": 1}, "unexpected keyword argument 'no_such_option'", TypeError),
    ("kradagrad", {"betas": (1.0, 1.0)}, "betas=(1.0, 1.0) must be two numbers, beta1 in [0, 1)"),
    # the Kronecker engine's scheduling, blocking and failure options
    *[
        (name, options, fragment)
        for name in KRON
        for options, fragment in [
            ({"precondition_frequency": 2.5}, "precondition_frequency=2.5 must be an integer >= 1"),
            ({"precondition_frequency": 0}, "precondition_frequency=0 must be an integer >= 1"),
            ({"precondition_frequency": True}, "precondition_frequency=True must be an integer >= 1"),
            ({"start_preconditioning_step": 0}, "start_preconditioning_step (or None, or math.inf: never)=0 must"),
            ({"start_preconditioning_step": 2.5}, "start_preconditioning_step (or None, or math.inf: never)=2.5"),
            ({"max_preconditioner_dim": 0}, "max_preconditioner_dim=0 must be an integer >= 1"),
            ({"max_consecutive_failures": 0}, "max_consecutive_failures=0 must be an integer >= 1"),
            ({"factor_dtype": "float16"}, "factor_dtype must be 'float32' or 'float64'"),
            refused(name, "no_such_option", 1)[1:],
        ]
    ],
    ("shampoo", {"betas": (1.0, 0.9)}, "betas=(1.0, 0.9) must be two numbers, beta1 in [0, 1)"),
    ("shampoo", {"grafting": "lion"}, "grafting must be None or one of ('adam', 'adagrad', 'rmsprop', 'sgd')"),
    (
        "eshampoo",
        {"second_moment_at_refresh": "meta"},
        "second_moment_at_refresh must be one of ('position', 'follow')",
    ),
    ("eshampoo", {"basis_method": "qr", "max_qr_iterations": 0}, "max_qr_iterations=0 must be an integer >= 1"),
    (
        "soap",
        {"statistics_precision": "float16"},
        "statistics_precision must be one of ('highest', 'tf32', 'bfloat16')",
    ),
    # options a variant does not honour
    refused("shampoo", "refresh_tau", 0.1),
    refused("shampoo", "refresh_tau", 0.0),  # refused whatever the value: it never applies
    refused("soap", "root_method", "newton"),
    refused("soap", "basis_method", "qr"),
    refused("eshampoo", "grafting", "adam"),
    refused("kradagrad_star", "grafting", "adam"),
    refused("kradagrad_star", "damping", 0.0),
    refused("shampoo", "damping", 1e-8),
    refused("shampoo", "online", True),
    refused("kradagrad", "trace_scaling", False),
    refused("eshampoo", "exponent_override", 0.5),
    refused("shampoo", "second_moment_at_refresh", "position"),
    refused("kradagrad", "statistics_precision", "tf32"),  # no factor-statistics products: rank updates
    refused("kradagrad_star", "statistics_precision", "highest"),
    refused("shampoo", "precondition_frequncy", 10),  # a typo is refused the same way
    # the preset fixes the variant; the learning rate has its own argument (torch refuses JAX's name as an option,
    # and JAX's preset takes it as a named argument: Python's TypeError names it)
    ("shampoo", {"variant": "soap"}, "variant", (ValueError, TypeError)),
    ("shampoo", {"learning_rate": 0.1}, "learning_rate", (ValueError, TypeError)),
    # options that apply only with other values
    ("shampoo", {"diagonal": "adagrad"}, "diagonal applies only with grafting=None"),
    ("eshampoo", {"max_qr_iterations": 3}, "max_qr_iterations applies only with basis_method='qr'"),
    ("shampoo", {"root_method": "newton", "exponent_override": 0.3}, "root_method='newton' needs an integer root"),
]


def _param(core: str, case: tuple):
    name, options, fragment, *errors = case
    return pytest.param(
        core, name, options, fragment, errors[0] if errors else ValueError, id=f"{core}-{name}-{options}"
    )


@pytest.mark.parametrize("core, name, options, fragment, errors", [_param(c, case) for c in CORES for case in CASES])
def test_a_bad_option_is_one_line_at_construction(core, name, options, fragment, errors):
    with pytest.raises(errors) as info:
        CORES[core](name, options)
    message = str(info.value)
    assert fragment in message and "\n" not in message, message


@pytest.mark.parametrize("core", CORES)
@pytest.mark.parametrize("name", KRON)
def test_a_refusal_names_the_variant_and_every_option_it_accepts(core, name):
    with pytest.raises(ValueError) as info:
        CORES[core](name, {"no_such_option": 1})
    message = str(info.value)
    assert message.startswith(f"{OWNER[core](name)} ({name}) does not use no_such_option; it accepts "), message
    accepted = message.split("it accepts ", 1)[1]
    assert all(option in accepted for option in HONOURED[name])
