"""Cost of key rotation and of deleting a company, on a database with many rows.

Makes TENANTS tenants with one company each; every company gets INBOXES encrypted inboxes and
CONVERSATIONS conversations of MESSAGES messages. Then rotates every encrypted column to a new key
(batch size BATCH) and deletes one company, printing the time each took and the counts.

    .venv/bin/python bench/bench_tenant_data.py                       # embedded SQLite in a temp dir
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_tenant_data.py

The PostgreSQL database must exist and be empty; it is migrated here.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert

from core.accounts import create_company, create_tenant, inbox_of_kind
from core.db import begin_write, create_engine, create_sessionmaker
from core.migrate import upgrade
from core.models import Contact, Conversation, Inbox, Message
from core.purge import delete_rows, ownership
from core.security import SecretBox
from core.vault import rotate_all

TENANTS = int(os.environ.get("BENCH_TENANTS", "5"))
INBOXES = int(os.environ.get("BENCH_INBOXES", "400"))
CONVERSATIONS = int(os.environ.get("BENCH_CONVERSATIONS", "400"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "10"))
BATCH = int(os.environ.get("BENCH_BATCH", "200"))


async def main(url: str) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    old = SecretBox(key_material="bench-old-key")
    companies = []
    for t in range(TENANTS):
        async with sessionmaker() as s, s.begin():
            tenant = await create_tenant(s, name=f"T{t}", slug=f"bench-t{t}")
            company = await create_company(s, tenant_id=tenant.id, slug=f"bench-c{t}", name=f"C{t}")
            webchat = await inbox_of_kind(s, company, "webchat")
            await s.execute(insert(Inbox), [
                {"tenant_id": tenant.id, "company_id": company.id, "kind": "telegram", "name": f"bot {i}",
                 "active": False, "settings": {},
                 "credentials": old.encrypt(json.dumps({"bot_token": f"{i}:token-{i:040d}"}))}
                for i in range(INBOXES)])
            for n in range(CONVERSATIONS):
                contact = Contact(tenant_id=tenant.id, company_id=company.id, name=f"c{n}")
                s.add(contact)
                await s.flush()
                conv = Conversation(tenant_id=tenant.id, company_id=company.id, inbox_id=webchat.id,
                                    contact_id=contact.id, state={})
                s.add(conv)
                await s.flush()
                await s.execute(insert(Message), [
                    {"tenant_id": tenant.id, "conversation_id": conv.id, "inbox_id": webchat.id, "channel": "webchat",
                     "direction": "in", "sender": "contact", "text": f"message {m}", "payload": {}, "seq": m}
                    for m in range(MESSAGES)])
            companies.append((tenant.id, company.id))
    print(f"rows: {TENANTS} tenants x ({INBOXES} encrypted inboxes, {CONVERSATIONS} conversations x "
          f"{MESSAGES} messages)")

    box = SecretBox(key_material="bench-new-key", fallbacks=["bench-old-key"])
    started = time.perf_counter()
    report = await rotate_all(sessionmaker, box=box, batch_size=BATCH)
    took = time.perf_counter() - started
    rotated = report.as_dict()["rotated"]
    print(f"rotate: {rotated} values in {took:.2f} s ({rotated / took:.0f} values/s, batch {BATCH})")
    started = time.perf_counter()
    again = await rotate_all(sessionmaker, box=box, batch_size=BATCH)
    print(f"rotate again (nothing to do): {again.as_dict()['current']} values checked in "
          f"{time.perf_counter() - started:.2f} s")

    tenant_id, company_id = companies[0]
    started = time.perf_counter()
    async with sessionmaker() as s, s.begin():
        await begin_write(s)
        removed = await delete_rows(s, ownership(kind="company", tenant_id=tenant_id, company_id=company_id))
    print(f"delete one company: {sum(removed.values())} rows in {time.perf_counter() - started:.2f} s "
          f"({', '.join(f'{k}={v}' for k, v in sorted(removed.items()))})")
    await engine.dispose()


if __name__ == "__main__":
    database_url = os.environ.get("BENCH_DATABASE_URL")
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        asyncio.run(main(url))
