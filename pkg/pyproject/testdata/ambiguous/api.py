from flask import Flask

app = Flask(__name__)


@app.get("/api")
def api():
    return {"ok": True}
