"""An echo bot written with python-telegram-bot, unmodified but for its API root.

Run by test/bridges/bots/clients.test.ts as `python3 ptb_echo.py <token> <gateway url>`: it
long-polls the gateway's Telegram Bot API and answers every text message that no bot wrote with
"ptb: <text>", as a reply to it. It prints "ready" once polling runs and stops on SIGTERM.
Works with python-telegram-bot 13 (Debian's python3-python-telegram-bot: Updater) and 20+
(Application.builder()).
"""

import sys
import warnings

warnings.simplefilter("ignore")

token, gateway = sys.argv[1], sys.argv[2].rstrip("/")
base_url = gateway + "/bot"

try:
    from telegram.ext import Application  # python-telegram-bot 20+
except ImportError:
    Application = None


def wanted(message):
    return (
        message is not None
        and message.text is not None
        and not (message.from_user is not None and message.from_user.is_bot)
    )


if Application is not None:
    from telegram.ext import MessageHandler, filters

    async def echo(update, context):
        if wanted(update.message):
            await update.message.reply_text(
                "ptb: " + update.message.text, reply_to_message_id=update.message.message_id
            )

    async def started(app):
        print("ready", flush=True)

    app = Application.builder().token(token).base_url(base_url).post_init(started).build()
    app.add_handler(MessageHandler(filters.TEXT, echo))
    app.run_polling(timeout=1, poll_interval=0)
else:
    from telegram.ext import Filters, MessageHandler, Updater

    def echo(update, context):
        if wanted(update.message):
            update.message.reply_text("ptb: " + update.message.text, quote=True)

    updater = Updater(token=token, base_url=base_url, use_context=True)
    updater.dispatcher.add_handler(MessageHandler(Filters.text, echo))
    updater.start_polling(timeout=1, poll_interval=0)
    print("ready", flush=True)
    updater.idle()
