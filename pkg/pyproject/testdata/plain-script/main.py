"""Prints the time once a minute."""
import time


def main() -> None:
    while True:
        print(time.strftime("%H:%M:%S"), flush=True)
        time.sleep(60)


if __name__ == "__main__":
    main()
