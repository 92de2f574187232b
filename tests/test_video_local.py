"""video.generate, provider local: a real H.264 MP4, decoded back and measured."""

from __future__ import annotations

import asyncio
import io
import itertools
import multiprocessing
from pathlib import Path

import av
import numpy as np
import pytest

from genqueue.handlers.video import generate
from genqueue.handlers.video.encode import decode_frames, probe_mp4
from genqueue.handlers.video.local import render_video
from genqueue.handlers.video.models import VideoGenerate
from genqueue.worker.execution import LocalContext
from tests.helpers import wait_for
from tests.video_support import kind_context


def small(prompt: str, **extra: object) -> VideoGenerate:
    values: dict[str, object] = {"prompt": prompt, "duration_s": 1, "resolution": "240p", "fps": 12}
    return VideoGenerate.model_validate(values | extra)


def top_level_boxes(mp4: bytes) -> list[str]:
    boxes, at = [], 0
    while at + 8 <= len(mp4):
        size = int.from_bytes(mp4[at : at + 4], "big")
        boxes.append(mp4[at + 4 : at + 8].decode("latin-1"))
        if size < 8:
            break
        at += size
    return boxes


def test_local_video_is_a_browser_playable_h264_mp4_of_the_asked_size() -> None:
    rendered = render_video(small("a lighthouse at sunset by the sea", seed=3))
    boxes = top_level_boxes(rendered.mp4)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart: playable while loading
    with av.open(io.BytesIO(rendered.mp4)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
    info = probe_mp4(rendered.mp4)
    assert (info.width, info.height, info.fps) == (426, 240, 12.0)
    assert info.frames == 12 and info.duration_s == pytest.approx(1.0, abs=0.01)
    decoded = decode_frames(rendered.mp4)
    assert len(decoded) == 12 and decoded[0].shape == (240, 426, 3)


def test_same_seed_gives_the_same_frames() -> None:
    first = render_video(small("snowy mountains at night", seed=42))
    again = render_video(small("snowy mountains at night", seed=42))
    other_seed = render_video(small("snowy mountains at night", seed=43))
    assert first.mp4 == again.mp4
    frames, same = decode_frames(first.mp4), decode_frames(again.mp4)
    assert all(np.array_equal(a, b) for a, b in zip(frames, same, strict=True))
    assert not np.array_equal(frames[0], decode_frames(other_seed.mp4)[0])


def test_different_prompts_give_different_videos() -> None:
    night = decode_frames(render_video(small("snowy mountains at night", seed=1)).mp4)
    sunset = decode_frames(render_video(small("a desert at sunset", seed=1)).mp4)
    difference = np.abs(night[0].astype(int) - sunset[0].astype(int)).mean()
    assert difference > 30  # another scene and palette, not noise
    assert night[0].mean() < sunset[0].mean()  # night is darker


def test_the_picture_moves_over_time() -> None:
    frames = decode_frames(render_video(small("a rainy city street", seed=5)).mp4)
    steps = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in itertools.pairwise(frames)]
    assert all(step > 0.5 for step in steps)  # every frame differs from the one before


def test_aspect_ratio_and_resolution_set_the_frame() -> None:
    info = probe_mp4(render_video(small("a forest", aspect_ratio="9:16", fps=4)).mp4)
    assert (info.width, info.height, info.frames) == (240, 426, 4)


async def test_handler_renders_in_a_child_and_saves_the_artifact(tmp_path: Path) -> None:
    async with kind_context(tmp_path, generate) as ctx:
        result = await generate.handler(small("a lighthouse", seed=9), ctx)
    assert result.video_url == "/v1/artifacts/t-video/video.mp4"
    saved = (tmp_path / "artifacts" / "t-video" / "video.mp4").read_bytes()
    assert result.file_size == len(saved) and saved[4:8] == b"ftyp"
    assert (result.width, result.height, result.frames, result.fps) == (426, 240, 12, 12.0)
    assert result.provider == "local" and result.seed == 9 and result.duration_s == 1.0
    assert ctx.latest is not None and ctx.latest.fraction == 1.0


async def test_cancelling_a_local_render_kills_its_process(tmp_path: Path) -> None:
    async with kind_context(tmp_path, generate) as ctx:
        await cancelled_render_leaves_no_process(tmp_path, ctx)


async def test_the_render_process_stays_warm_between_videos(tmp_path: Path) -> None:
    async with kind_context(tmp_path, generate) as ctx:
        await generate.handler(small("a lighthouse", seed=1), ctx)
        first = [p.pid for p in multiprocessing.active_children() if p.name == "genqueue-pool"]
        await generate.handler(small("a lighthouse", seed=2), ctx)
        second = [p.pid for p in multiprocessing.active_children() if p.name == "genqueue-pool"]
    assert len(first) == 1 and first == second  # one process, the same one: imports paid once
    assert not [p for p in multiprocessing.active_children() if p.name == "genqueue-pool"]


async def cancelled_render_leaves_no_process(tmp_path: Path, ctx: LocalContext) -> None:
    payload = VideoGenerate(prompt="a long city flight", duration_s=10, resolution="720p")

    async def handler() -> object:
        return await generate.handler(payload, ctx)

    run = asyncio.create_task(handler())

    async def rendering_frames() -> bool:
        return ctx.latest is not None and ctx.latest.message.startswith("frame")

    await wait_for(rendering_frames, 30, message="the child to render frames")
    children = [p for p in multiprocessing.active_children() if p.name == "genqueue-pool"]
    assert children
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert all(not p.is_alive() for p in children)
    assert not (tmp_path / "artifacts" / "t-video").exists()
