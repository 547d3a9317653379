"""An srun task's ranks under torch's names (runtime/slurm.py)."""

from __future__ import annotations

from ssltrain.runtime.slurm import first_host, torch_variables

TASK = {"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "123456",
        "SLURM_STEP_NODELIST": "gpu[003-004,010],cpu1", "SLURM_JOB_NODELIST": "gpu[001-010]"}


def test_an_srun_task_gets_rank_world_local_rank_and_the_first_node_as_master():
    assert torch_variables(TASK) == {"RANK": "5", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "gpu003",
                                     "MASTER_PORT": str(20_000 + 123456 % 20_000)}


def test_a_master_address_and_port_already_set_are_kept():
    variables = torch_variables({**TASK, "MASTER_ADDR": "head", "MASTER_PORT": "29500"})
    assert (variables["MASTER_ADDR"], variables["MASTER_PORT"]) == ("head", "29500")


def test_torchrun_a_single_task_and_no_slurm_export_nothing():
    assert torch_variables({**TASK, "WORLD_SIZE": "8"}) == {}
    assert torch_variables({**TASK, "SLURM_STEP_NUM_TASKS": "1"}) == {}
    assert torch_variables({}) == {}


def test_first_host_of_plain_and_bracketed_node_lists():
    assert [first_host(nodes) for nodes in ("node7", "a-b[12-13]", "n1,n2")] == ["node7", "a-b12", "n1"]
