"""SqliteLogStore specifics: every sqlite error is a StorageError naming the file (issue 12 item 5)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import msgpack
import pytest

from raftx.errors import StorageCorrupted, StorageError
from raftx.storage import SqliteLogStore
from raftx.types import Entry, LogId

PAGE = 4096


async def filled(db: Path) -> None:
    s = await SqliteLogStore.open(db)
    await s.append([Entry(LogId(1, i), b"x%d" % i * 100) for i in range(200)])
    await s.close()


def garble(db: Path, page: int) -> None:
    data = bytearray(db.read_bytes())
    assert len(data) >= (page + 1) * PAGE
    data[page * PAGE : (page + 1) * PAGE] = bytes(range(256)) * (PAGE // 256)
    db.write_bytes(bytes(data))


@pytest.mark.parametrize("page", [0, 1])
async def test_a_garbage_page_is_a_storage_error_naming_the_file(tmp_path: Path, page: int) -> None:
    db = tmp_path / "log.db"
    await filled(db)
    garble(db, page)
    with pytest.raises(StorageError, match=str(db)) as exc:
        store = await SqliteLogStore.open(db)
        await store.try_get_log_entries(0, 1000)  # a page only a read reaches
    assert not isinstance(exc.value, sqlite3.Error)


async def test_a_meta_value_of_the_wrong_type_is_refused_naming_the_file(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    await filled(db)
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('vote', ?)", (msgpack.packb(["log_id", 1, 2]),))
    con.close()
    with pytest.raises(StorageCorrupted, match=f"'vote'.*{db}"):
        await SqliteLogStore.open(db)


async def test_a_second_owner_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    first = await SqliteLogStore.open(db)
    with pytest.raises(StorageError, match=f"data directory in use by pid {os.getpid()}"):
        await SqliteLogStore.open(db)
    await first.close()
    await (await SqliteLogStore.open(db)).close()
