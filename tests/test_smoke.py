"""The shortest path through the API, in process and over a real server."""

import aiohttp

from tests.conftest import AUTO, SHIPPED_DB, register_and_log_in


async def test_create_then_get_auto(client, auth_headers):
    created = await client.post("/auto/BMW", json=AUTO, headers=auth_headers)
    fetched = await client.get("/auto/BMW", headers=auth_headers)

    assert created.status == 201
    assert await created.json() == {"Message": "Auto created"}
    assert fetched.status == 200
    assert await fetched.json() == {"mark": "BMW", **AUTO}


async def test_server_process_serves_shipped_stock(server):
    server.start()
    async with aiohttp.ClientSession() as session:
        headers = await register_and_log_in(session, server.base_url)
        async with session.get(f"{server.base_url}/stock", headers=headers) as response:
            body = await response.json()

    assert response.status == 200
    assert [auto["mark"] for auto in body] == ["BMW", "Лада Веста", "Toyota Camry"]
    assert server.stop() == 0
    assert SHIPPED_DB.read_bytes() != server.db_path.read_bytes()
