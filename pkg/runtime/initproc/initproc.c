// berth's container init (--init), in C so that it runs before the Go
// runtime starts: a Go init installs its signal handlers only some
// milliseconds after exec, and a SIGTERM arriving in between would end it
// with status 2 instead of reaching the command.
//
// When the berth binary is started as ".../docker-init -- CMD ARGS...", this
// constructor blocks every signal, forks, runs CMD in the child with the
// original signal mask, and in the parent forwards every signal it receives
// to CMD, reaps every child that exits (it is PID 1 of the container), and
// exits with CMD's status (128+signal when CMD was killed). Otherwise it
// returns and berth starts normally.
#define _GNU_SOURCE
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void berth_init_proc(int argc, char **argv) {
	if (argc < 1 || argv[0] == NULL)
		return;
	char *copy = strdup(argv[0]);
	if (copy == NULL)
		return;
	int is_init = strcmp(basename(copy), "docker-init") == 0;
	free(copy);
	if (!is_init)
		return;

	char **cmd = argv + 1;
	if (*cmd != NULL && strcmp(*cmd, "--") == 0)
		cmd++;
	if (*cmd == NULL) {
		fprintf(stderr, "docker-init: no command given\n");
		_exit(127);
	}

	sigset_t all, orig;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &orig);

	pid_t child = fork();
	if (child < 0) {
		perror("docker-init: fork");
		_exit(126);
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &orig, NULL);
		execvp(cmd[0], cmd);
		fprintf(stderr, "docker-init: %s: %s\n", cmd[0], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}

	for (;;) {
		siginfo_t info;
		int sig = sigwaitinfo(&all, &info);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			perror("docker-init: sigwaitinfo");
			_exit(1);
		}
		if (sig != SIGCHLD) {
			kill(child, sig);
			continue;
		}
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			if (pid == child) {
				if (WIFSIGNALED(status))
					_exit(128 + WTERMSIG(status));
				_exit(WEXITSTATUS(status));
			}
		}
	}
}

__attribute__((constructor)) static void berth_init_proc_ctor(int argc, char **argv) {
	berth_init_proc(argc, argv);
}
