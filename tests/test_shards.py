"""dataset=webdataset: shards written by ssltrain-make-shards, named by a folder, a brace
pattern or a list, read image by image; the pretraining order over them (each rank and
read stream its own shards, no image twice an epoch, resumable mid-epoch)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from conftest import REPO, smoke
from kit import write_image_folder
from ssltrain.compose import compose_settings
from ssltrain.data.decode import try_load_rgb
from ssltrain.data.images import ShardMembers
from ssltrain.data.samplers import make_sampler
from ssltrain.data.samplers.shards import stream_loads
from ssltrain.data.shard_writer import make_shards
from ssltrain.data.shards import expand_shards, index_shards
from ssltrain.data.sources import webdataset as webdataset_source
from ssltrain.errors import UserError
from ssltrain.run import run

webdataset = pytest.importorskip("webdataset")


def _shards(tmp_path: Path, per_class: int = 6, shard_size: int = 4, val: bool = False, corrupt: bool = False) -> Path:
    source, out = tmp_path / "images", tmp_path / "shards"
    write_image_folder(source, classes=("a", "b", "c"), per_class=per_class, size=12, corrupt=corrupt)
    if val:
        write_image_folder(tmp_path / "v", classes=("b", "c"), per_class=2, size=12, corrupt=False)
        (tmp_path / "v" / "train").rename(source / "val")
    make_shards(source, out, shard_size=shard_size)
    return out


def _folder_samples(folder: Path, classes: list[str]) -> Counter:
    return Counter((path.read_bytes(), classes.index(path.parent.name)) for path in folder.glob("*/*.png"))


def test_make_shards_writes_every_image_with_its_label_for_webdatasets_own_reader(tmp_path):
    out = _shards(tmp_path)
    read = Counter((sample["png"], int(sample["cls"])) for sample in
                   webdataset.WebDataset(str(out / "train-{000000..000004}.tar"), shardshuffle=False))
    assert read == _folder_samples(tmp_path / "images" / "train", ["a", "b", "c"])
    assert (out / "classes.txt").read_text() == "a\nb\nc\n"
    assert json.loads((out / "shards.json").read_text())["splits"]["train"] == {"images": 18, "shards": 5}


def test_make_shards_mixes_the_classes_across_shards(tmp_path):
    out = _shards(tmp_path, per_class=8, shard_size=6)
    first = [int(sample["cls"]) for sample in webdataset.WebDataset(str(out / "train-000000.tar"), shardshuffle=False)]
    assert len(set(first)) > 1


def test_the_val_split_is_labelled_with_the_training_sets_classes(tmp_path):
    out = _shards(tmp_path, val=True)
    source = webdataset_source(str(out), image_size=12, streams=1)  # the folder's val-*.tar are its evaluation split
    assert source.class_names == ["a", "b", "c"] and source.num_classes == 3
    assert sorted(source.test.labels.tolist()) == [1, 1, 2, 2]


def test_a_folder_a_brace_pattern_and_a_list_file_name_the_same_shards(tmp_path):
    out = _shards(tmp_path)
    listed = tmp_path / "train.txt"
    listed.write_text("# the shards, relative to this file\n" + "".join(f"shards/train-{i:06d}.tar\n" for i in range(5)))
    named = [expand_shards(spec, "dataset.shards") for spec in
             (str(out), str(out / "train-{000000..000004}.tar"), str(listed))]
    assert named[0] == named[1] == [str(path) for path in sorted(out.glob("*.tar"))]
    assert [Path(shard).resolve() for shard in named[2]] == [Path(shard).resolve() for shard in named[0]]


def test_a_pattern_that_matches_nothing_is_one_line_naming_the_key(tmp_path):
    with pytest.raises(UserError, match=r"^dataset\.shards=\S+ matches no shard file; give a folder of \.tar shards"):
        expand_shards(str(tmp_path / "train-{000000..000003}.tar"), "dataset.shards")


def test_each_image_is_read_back_from_its_shard_by_its_index(tmp_path):
    out = _shards(tmp_path)
    images = index_shards(expand_shards(str(out), "dataset.shards"), use_cache=False)
    expected = _folder_samples(tmp_path / "images" / "train", ["a", "b", "c"])
    assert Counter((images.members.read(i), int(images.labels[i])) for i in range(len(images))) == expected
    assert try_load_rgb(images, 0).size == (12, 12)
    assert images.subset(torch.tensor([3, 1])).members.read(1) == images.members.read(1)


def test_a_sample_without_an_image_member_is_left_out_and_one_with_is_kept(tmp_path):
    shard = tmp_path / "mixed.tar"
    with tarfile.open(shard, "w") as tar:
        for name, data in [("s1.txt", b"caption only"), ("s2.png", b"png bytes"),
                           ("s2.cls", b"1")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    images = index_shards([str(shard)], use_cache=False)
    assert images.paths == [f"{shard}:s2.png"] and images.labels.tolist() == [1]


def _members(sizes: list[int], streams: int) -> ShardMembers:
    shard_of = torch.cat([torch.full((size,), number) for number, size in enumerate(sizes)])
    table = torch.stack([shard_of, torch.zeros_like(shard_of), torch.zeros_like(shard_of)], dim=1)
    return ShardMembers(shards=[f"s{n}.tar" for n in range(len(sizes))], table=table, streams=streams)


SIZES = [9, 7, 7, 6, 5, 5, 4, 3, 3, 2, 8, 6]  # uneven shards, 65 images


def _epoch_batches(members: ShardMembers, rank: int, epoch: int, world: int = 2, batch: int = 3) -> list[list[int]]:
    sampler = make_sampler(torch.zeros(len(members.table), dtype=torch.long), batch, seed=5, rank=rank,
                           world_size=world, shards=members)
    return sampler.indices(epoch).view(-1, batch).tolist()


def test_each_rank_and_read_stream_reads_its_own_shards_and_no_image_twice_an_epoch():
    members = _members(SIZES, streams=2)
    shard_of = members.table[:, 0]
    seen, shards_of_stream = [], {}
    for rank in range(2):
        for step, batch in enumerate(_epoch_batches(members, rank, epoch=3)):
            shards_of_stream.setdefault((rank, step % 2), set()).update(shard_of[batch].tolist())
            seen.extend(batch)
    assert len(seen) == len(set(seen))
    streams = list(shards_of_stream.values())
    assert all(not (a & b) for i, a in enumerate(streams) for b in streams[i + 1:])


def test_every_epoch_has_the_same_steps_and_deals_other_shards_to_a_rank():
    members = _members(SIZES, streams=2)
    shard_of = members.table[:, 0]
    epochs = [_epoch_batches(members, rank=0, epoch=epoch) for epoch in range(4)]
    assert len({len(batches) for batches in epochs}) == 1
    assert len({frozenset(shard_of[torch.tensor(batches)].flatten().tolist()) for batches in epochs}) > 1


def test_an_epoch_trains_on_all_but_what_the_smallest_stream_leaves_over():
    members = _members(SIZES, streams=2)
    steps = len(_epoch_batches(members, rank=0, epoch=0))
    assert steps == 2 * (min(stream_loads(SIZES, 4)) // 3)  # 4 streams over the world, batch 3
    assert sorted(stream_loads(SIZES, 4)) == [16, 16, 16, 17] and steps == 10  # by hand: 9+5+2, 8+5+4, 7+6+3, 7+6+3


def test_workers_whose_count_divides_the_streams_read_disjoint_shards():
    members = _members(SIZES, streams=4)
    sampler = make_sampler(torch.zeros(len(members.table), dtype=torch.long), 2, seed=0, shards=members)
    shard_of = members.table[:, 0]
    loader = DataLoader(list(range(len(shard_of))), batch_size=2, sampler=[index for _, index in sampler],
                        num_workers=2, worker_init_fn=None, collate_fn=lambda items: (torch.utils.data.get_worker_info().id, items))
    by_worker: dict[int, set] = {}
    for worker, items in loader:
        by_worker.setdefault(worker, set()).update(shard_of[items].tolist())
    assert len(by_worker) == 2 and not (by_worker[0] & by_worker[1])


def test_a_resumed_epoch_continues_with_the_batches_not_yet_trained_on():
    members = _members(SIZES, streams=2)
    sampler = make_sampler(torch.zeros(len(members.table), dtype=torch.long), 3, seed=1, shards=members)
    sampler.set_epoch(2)
    whole = list(sampler)
    sampler.set_epoch(2, start_step=4)
    assert list(sampler) == whole[4 * 3:] and len(sampler) == len(whole) - 12


def test_fewer_shards_than_read_streams_is_one_line():
    with pytest.raises(UserError, match=r"^3 shards cannot give each of 2 process\(es\) x dataset\.streams=2 read streams"):
        make_sampler(torch.zeros(9, dtype=torch.long), 1, seed=0, world_size=2, shards=_members([3, 3, 3], streams=2))


def test_class_balanced_batches_are_refused_on_shards():
    with pytest.raises(UserError, match=r"^trainer\.sampler=pk .* use trainer\.sampler=random with dataset=webdataset"):
        make_sampler(torch.zeros(9, dtype=torch.long), 2, seed=0, images_per_class=2, shards=_members([3, 3, 3], 1))


def test_webdataset_without_its_extra_names_the_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "webdataset" else real(name, *a))
    with pytest.raises(UserError, match=r"^dataset=webdataset needs webdataset; install it with pip install 'ssltrain\[shards\]'"):
        compose_settings(smoke("dataset=webdataset", "dataset.shards=x", "dataset.image_size=16"))


def test_a_run_pretrains_on_shards_and_evaluates_on_the_val_shards_skipping_a_corrupt_image(tmp_path, caplog):
    out = _shards(tmp_path, per_class=16, shard_size=6, val=True, corrupt=True)
    settings = compose_settings(smoke("dataset=webdataset", f"dataset.shards={out}", f"dataset.val_shards={out}/val-000000.tar",
                                      "dataset.image_size=16", "dataset.streams=2", "trainer.batch_size=8",
                                      "trainer.epochs=1"))
    with caplog.at_level("WARNING"):
        results = run(settings, tmp_path / "run", search_roots=[])
    assert results["val_split"] == "test" and 0 <= results["knn_top1"] <= 1
    assert "left out 1 unreadable image" in caplog.text and "shards/train-" in caplog.text  # named shard:member


@pytest.mark.cluster
def test_two_processes_under_torchrun_pretrain_on_their_own_shards(tmp_path):
    out = _shards(tmp_path, per_class=16, shard_size=4)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "-m", "ssltrain", *smoke("dataset=webdataset", f"dataset.shards={out}", "dataset.image_size=16",
                                                      "dataset.streams=2", "trainer.batch_size=8", "trainer.epochs=1",
                                                      "trainer.device=cpu")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dealt to 2 process(es) x 2 streams" in result.stdout + result.stderr
    assert len(list(tmp_path.glob("outputs/*/*/results.json"))) == 1


def test_the_streamed_backend_reads_its_images_from_the_shards(tmp_path):
    out = _shards(tmp_path, per_class=16, shard_size=6)
    settings = compose_settings(smoke("dataset=webdataset", f"dataset.shards={out}", "dataset.image_size=16",
                                      "dataset.streams=2", "trainer.batch_size=8", "trainer.epochs=1",
                                      "augmentation.backend=streamed"))
    assert 0 <= run(settings, tmp_path / "run", search_roots=[])["knn_top1"] <= 1
