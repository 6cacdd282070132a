import asyncio

import asyncpg
import redis

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis


def test_redis_answers(redis_server: EmbeddedRedis) -> None:
    r = redis.Redis.from_url(redis_server.url)
    assert r.ping()
    r.close()


def test_postgres_answers(postgres_server: EmbeddedPostgres) -> None:
    async def q() -> int:
        conn = await asyncpg.connect(postgres_server.url)
        try:
            return int(await conn.fetchval("select 41 + 1"))
        finally:
            await conn.close()

    assert asyncio.run(q()) == 42
