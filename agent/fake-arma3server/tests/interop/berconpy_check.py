"""Drives the fake Arma 3 server's BattlEye RCon with berconpy, an independent client from PyPI.

Usage: berconpy_check.py PORT PASSWORD [wait]
With "wait", waits (up to 20 s) for a server message announcing that Zed connected.
Prints one JSON object: the `players` answer, the server messages seen, and the login outcome.
"""

import asyncio
import json
import sys

import berconpy


async def main(port: int, password: str, wait: bool) -> None:
    client = berconpy.RCONClient()
    messages: list[str] = []
    joined = asyncio.Event()

    def on_message(message: str) -> None:
        messages.append(message)
        if message.endswith("connected") and "Zed" in message:
            joined.set()

    client.add_listener("on_message", on_message)
    result = {"login": "ok", "players": "", "messages": messages}
    try:
        async with client.connect("127.0.0.1", port, password):
            result["players"] = await client.send_command("players")
            print("READY", file=sys.stderr, flush=True)
            if wait:
                try:
                    await asyncio.wait_for(joined.wait(), 20)
                except asyncio.TimeoutError:
                    pass
    except berconpy.LoginFailure as e:
        result["login"] = f"failed: {type(e).__name__}"
    print(json.dumps(result))


asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3:] == ["wait"]))
