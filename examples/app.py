"""A Streamlit app whose resources are cached by fastcache.

    pip install . "streamlit==1.67.*" && streamlit run examples/app.py

Every cached function below is what an app would cache with ``@st.cache_resource``; only
the decorator changed. Rerun the page, open it in a second tab, clear the caches (the
button, or "Clear cache" in the app menu) and watch what is computed again.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass, field

import fastcache
import pandas as pd
import streamlit as st

log = logging.getLogger("fastcache.example")
logging.basicConfig(level=logging.INFO, format="%(message)s")

# How long the pretend model takes to load (the tests shorten or lengthen it).
LOAD_SECONDS = float(os.environ.get("FASTCACHE_EXAMPLE_LOAD_SECONDS", "2"))


def short_id() -> str:
    return uuid.uuid4().hex[:8]


# A database connection: shared by every session, checked before each use, closed when it
# leaves the cache (expired after ten minutes, failed its check, or cleared).
@fastcache.cache_resource(
    ttl="10m",
    validate=lambda db: db.connection.execute("select 1").fetchone() == (1,),
    on_release=lambda db: (log.info("released connection %s", db.id), db.connection.close()),
)
def connect(url: str) -> Database:
    connection = sqlite3.connect(url, check_same_thread=False)
    connection.execute("create table cities (name text, population integer)")
    connection.executemany(
        "insert into cities values (?, ?)",
        [("Lisbon", 545_000), ("Oslo", 709_000), ("Porto", 232_000), ("Vienna", 1_982_000)],
    )
    return Database(short_id(), connection)


@dataclass
class Database:
    id: str
    connection: sqlite3.Connection


@dataclass
class Model:
    size: str
    id: str = field(default_factory=short_id)

    def predict(self, text: str) -> str:
        return f"{self.size} model says: {text[::-1]}"


# A slow model: Streamlit's spinner while it loads, the two most recently used sizes kept.
@fastcache.cache_resource(show_spinner="Loading the model...", show_time=True, max_entries=2)
def load_model(size: str) -> Model:
    time.sleep(LOAD_SECONDS)
    model = Model(size)
    log.info("loaded model %s", model.id)
    return model


# An index keyed by a DataFrame's whole content; the caption it writes is replayed on hits.
@fastcache.cache_resource
def build_index(frame: pd.DataFrame) -> dict[str, int]:
    st.caption(f"Index built over {len(frame)} rows.")
    return dict(zip(frame["name"], frame["population"]))


# One shopping cart per browser session, released when the session ends.
@fastcache.cache_resource(
    scope="session", on_release=lambda cart: log.info("released cart %s", cart["id"])
)
def cart() -> dict:
    return {"id": short_id(), "items": []}


st.title("fastcache inside Streamlit")

db = connect(":memory:")
frame = pd.read_sql_query("select * from cities order by name", db.connection)
st.subheader("Database connection")
st.text(f"connection {db.id}: {len(frame)} cities")

st.subheader("Model")
size = st.radio("Model size", ["small", "large"], horizontal=True)
model = load_model(size)
st.text(f"model {model.id} ({model.size})")
st.text(model.predict("fastcache"))

st.subheader("Index keyed by a DataFrame")
index = build_index(frame)
st.text(f"Oslo: {index['Oslo']:,} people")

st.subheader("Your cart (this browser session only)")
mine = cart()
if st.button("Add an item"):
    mine["items"].append(f"item {len(mine['items']) + 1}")
st.text(f"cart {mine['id']}: {len(mine['items'])} items")

if st.button("Clear every cache"):
    fastcache.cache_resource.clear()
    st.rerun()
