"""python -m tools.fakeprovider [--host 127.0.0.1] [--port 8481]: serve until interrupted."""

import argparse
import signal
import threading

from .server import FakeProvider


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Loopback DingTalk and Alibaba Cloud for tests, demos and fault drills.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8481, help="0 picks a free port (printed)")
    args = parser.parse_args(argv)
    fake = FakeProvider(host=args.host, port=args.port).start()
    c = fake.config
    # Flushed: a drill that starts this process reads the URL from a pipe.
    print(
        f"Fake DingTalk + Alibaba Cloud on {fake.url}\n"
        f"  DINGTALK_API_BASE={fake.url} DINGTALK_OAPI_BASE={fake.url}\n"
        f"  ALIYUN_SMS_ENDPOINT={fake.url} ALIYUN_VOICE_ENDPOINT={fake.url}\n"
        f"  DINGTALK_APP_KEY={c.app_key} DINGTALK_APP_SECRET={c.app_secret} DINGTALK_CARD_CALLBACK_SECRET={c.card_callback_secret}\n"
        f"  ALIYUN_ACCESS_KEY_ID={c.access_key_id} ALIYUN_ACCESS_KEY_SECRET={c.access_key_secret}\n"
        f"  control: POST {fake.url}/_control/outage, GET {fake.url}/_control/calls",
        flush=True,
    )
    # SIGTERM (how a drill ends it) stops it as Ctrl-C does, answering what it holds.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
