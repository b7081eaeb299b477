"""NAdamW, AlgoPerf's baseline: linear warmup over warmup_factor * step_hint, cosine decay to zero at
step_hint, decoupled weight decay, label smoothing, dropout, optional gradient clipping.

Self-tuning (hyperparameters=None) uses ``SELF_TUNING_DEFAULTS``: the first point of the external search space.
"""

from precond import NAdamW
from submissions import glue

SELF_TUNING_DEFAULTS = glue.TrainingHParams(
    learning_rate=0.001308209823469072,
    one_minus_beta1=0.02686663061,
    beta2=0.9981232922116359,
    weight_decay=0.16375311233774334,
    warmup_factor=0.1,
    label_smoothing=0.1,
    dropout_rate=0.0,
)


def get_batch_size(workload_name):
    return glue.batch_size(workload_name)


def init_optimizer_state(workload, model_params, model_state, hyperparameters, rng):
    del model_state, rng
    hp = glue.TrainingHParams.resolve(hyperparameters, SELF_TUNING_DEFAULTS)
    optimizer = NAdamW(
        model_params.parameters(), lr=hp.learning_rate, betas=hp.betas, eps=1e-8, weight_decay=hp.weight_decay
    )
    return {"optimizer": optimizer, "hparams": hp}


def update_params(
    workload,
    current_param_container,
    current_params_types,
    model_state,
    hyperparameters,
    batch,
    loss_type,
    optimizer_state,
    eval_results,
    global_step,
    rng,
    train_state=None,
):
    del current_params_types, hyperparameters, loss_type, eval_results, train_state
    hp, optimizer = optimizer_state["hparams"], optimizer_state["optimizer"]
    glue.set_lr(optimizer, glue.scheduled_lr(hp, global_step, workload.step_hint))
    _, new_model_state = glue.train_step(workload, current_param_container, model_state, batch, rng, optimizer, hp)
    return optimizer_state, current_param_container, new_model_state


def data_selection(
    workload, input_queue, optimizer_state, current_param_container, model_state, hyperparameters, global_step, rng
):
    return glue.next_batch(input_queue)
