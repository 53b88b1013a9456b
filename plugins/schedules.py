"""Plugin: learning-rate schedules (`--lr-schedule cosine|plateau`), torch's schedulers stepped once per epoch."""

from cnnkit import ReaderInfo, RegisterCallback, ScheduleSpec, hookimpl

SCHEDULES = {
    "cosine": (
        ScheduleSpec("torch.optim.lr_scheduler.CosineAnnealingLR", {"eta_min": 0.0}, epochs_argument="T_max"),
        "cosine annealing from the optimizer's lr to 0 over the planned epochs (Loshchilov & Hutter, 2017)",
        ReaderInfo(
            display_name={"en": "cosine annealing", "es": "recocido coseno"},
            short_name={"en": "cosine", "es": "coseno"},
            citation="Loshchilov, I. & Hutter, F. (2017). SGDR: Stochastic gradient descent with warm restarts. "
            "International Conference on Learning Representations (ICLR). arXiv:1608.03983.",
            cite_as="Loshchilov & Hutter, 2017",
        ),
    ),
    "plateau": (
        ScheduleSpec(
            "torch.optim.lr_scheduler.ReduceLROnPlateau",
            {"mode": "min", "factor": 0.5, "patience": 2},
            monitor="val_loss",
        ),
        "halve the lr when val_loss has not improved for 2 epochs",
        ReaderInfo(
            display_name={"en": "reduce-on-plateau", "es": "reducción en meseta"},
            short_name={"en": "plateau", "es": "meseta"},
        ),
    ),
}


@hookimpl
def cnnkit_register_schedules(register: RegisterCallback) -> None:
    for name, (spec, description, reader) in SCHEDULES.items():
        register(name, spec, description=description, reader=reader)
