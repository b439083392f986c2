import flask

app = flask.Flask("admin")


@app.get("/")
def home():
    return "admin"
