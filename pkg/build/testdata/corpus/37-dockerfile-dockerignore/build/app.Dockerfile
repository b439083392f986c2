FROM berth-test/base:1
COPY . /app
