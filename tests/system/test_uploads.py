"""Input files end to end: uploads checked before they are kept, paths confined to the input
root (403 before anything is stored or read), and tasks that read them."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from genqueue import Client, TaskStatus
from tests.helpers import Cluster

pytestmark = pytest.mark.system

MAX_UPLOAD = 64 * 1024


def png(width: int = 40, height: int = 30, colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR (valid CRC) claims a huge size, with a few bytes of pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path]]:
    data = tmp_path_factory.mktemp("uploads")
    root = data / "inputs"
    root.mkdir()
    cluster = Cluster(
        data,
        extra_env={"GENQUEUE_INPUT_ROOT": str(root), "GENQUEUE_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)},
    )
    cluster.start_api()
    cluster.start_worker()
    try:
        yield cluster, root
    finally:
        cluster.stop()


@pytest.fixture
def api(deployment: tuple[Cluster, Path]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=deployment[0].url, timeout=30) as client:
        yield client


def stored_uploads(cluster: Cluster) -> set[str]:
    root = cluster.data_dir / "artifacts"
    return {p.name for p in root.glob("u-*")} if root.exists() else set()


def inspect(api: httpx.Client, file: dict[str, str], as_image: bool = False) -> httpx.Response:
    body = {"kind": "debug.inspect", "payload": {"file": file, "as_image": as_image}}
    return api.post("/v1/tasks", json=body)


def test_an_uploaded_image_is_described_and_read_by_a_task(
    api: httpx.Client, deployment: tuple[Cluster, Path]
) -> None:
    data = png(40, 30)
    answer = api.post("/v1/uploads", content=data, headers={"Content-Type": "image/png"})
    assert answer.status_code == 201, answer.text
    upload = answer.json()
    assert (upload["format"], upload["width"], upload["height"]) == ("PNG", 40, 30)
    assert api.get(upload["url"]).content == data
    task = inspect(api, {"upload": upload["id"]}, as_image=True).json()
    with Client(deployment[0].url) as client:
        done = client.wait(task["id"], timeout_s=30)
    assert done.status == TaskStatus.SUCCEEDED, done.error
    assert done.result == {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "format": "PNG",
        "width": 40,
        "height": 30,
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"hello, not an image", "not an image"),
        (png()[:60], "corrupt image"),
        (png_header_claiming(8000, 6000), "image too large"),
        (png_header_claiming(60000, 60000), "image too large"),
    ],
    ids=["empty", "text", "truncated", "over-the-pixel-cap", "decompression-bomb"],
)
def test_a_bad_upload_is_refused_naming_the_body_and_nothing_is_kept(
    api: httpx.Client, deployment: tuple[Cluster, Path], body: bytes, message: str
) -> None:
    before = stored_uploads(deployment[0])
    answer = api.post("/v1/uploads", content=body, headers={"Content-Type": "image/png"})
    assert answer.status_code == 422, answer.text
    assert answer.json()["fields"][0]["field"] == "body"
    assert message in answer.json()["message"]
    assert stored_uploads(deployment[0]) == before


def test_an_upload_over_the_size_cap_is_refused_with_413(
    api: httpx.Client, deployment: tuple[Cluster, Path]
) -> None:
    before = stored_uploads(deployment[0])
    noise = Image.frombytes("RGB", (200, 200), bytes(range(256)) * 468 + bytes(192))
    buffer = io.BytesIO()
    noise.save(buffer, format="BMP")
    assert len(buffer.getvalue()) > MAX_UPLOAD
    answer = api.post("/v1/uploads", content=buffer.getvalue())
    assert answer.status_code == 413, answer.text
    assert stored_uploads(deployment[0]) == before


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "a/../../secret.txt"])
def test_a_path_outside_the_input_root_is_refused_with_403_and_nothing_stored(
    api: httpx.Client, path: str
) -> None:
    before = api.get("/v1/tasks", params={"limit": 500}).json()["items"]
    answer = inspect(api, {"path": path})
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "forbidden_path"
    assert answer.json()["fields"][0]["field"] == "payload.file.path"
    assert api.get("/v1/tasks", params={"limit": 500}).json()["items"] == before


def test_a_file_under_the_input_root_is_read_by_path(
    api: httpx.Client, deployment: tuple[Cluster, Path]
) -> None:
    cluster, root = deployment
    (root / "cams").mkdir(exist_ok=True)
    (root / "cams" / "front.png").write_bytes(png(12, 34))
    task = inspect(api, {"path": "cams/front.png"}, as_image=True).json()
    with Client(cluster.url) as client:
        done = client.wait(task["id"], timeout_s=30)
    assert done.status == TaskStatus.SUCCEEDED, done.error
    assert done.result is not None and (done.result["width"], done.result["height"]) == (12, 34)


def test_a_symlink_leading_out_of_the_root_fails_the_task_without_retrying(
    api: httpx.Client, deployment: tuple[Cluster, Path]
) -> None:
    cluster, root = deployment
    outside = cluster.data_dir / "outside.txt"
    outside.write_text("not for tasks")
    link = root / "sneaky.txt"
    if not link.exists():
        link.symlink_to(outside)
    task = inspect(api, {"path": "sneaky.txt"}).json()
    with Client(cluster.url) as client:
        done = client.wait(task["id"], timeout_s=30)
    assert done.status == TaskStatus.FAILED
    assert done.error is not None and "outside the input root" in done.error
    assert done.attempts == 1


def test_exactly_one_source_must_be_given(api: httpx.Client) -> None:
    answer = inspect(api, {"upload": "u-" + "0" * 32, "path": "x.png"})
    assert answer.status_code == 422
    assert "exactly one" in answer.json()["message"]
