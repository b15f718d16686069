/*
 * Prism's pod sandbox process: the "pause" program a container runtime starts first in
 * every pod to hold its namespaces. It does nothing but wait:
 *   - SIGINT or SIGTERM: exit 0 at once (the runtime is tearing the pod down);
 *   - SIGCHLD: reap every exited child, so that zombies of a shared PID namespace, whose
 *     parents died, do not pile up under this process as PID 1;
 *   - anything else: keep waiting (pause() in a loop).
 * Built static (gcc -static -O2) so that a one-file image runs it. Written for Prism's
 * test node (scripts/k8s/node.sh); `pause -v` prints a version line and exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define PRISM_PAUSE_VERSION "prism-pause 1"

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  int saved = errno;
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
  errno = saved;
}

static int handle(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = fn == on_child ? SA_NOCLDSTOP | SA_RESTART : 0;
  return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts(PRISM_PAUSE_VERSION);
    return 0;
  }
  if (getpid() != 1) {
    fprintf(stderr, "pause: warning: not running as PID 1\n");
  }
  if (handle(SIGINT, on_stop) < 0 || handle(SIGTERM, on_stop) < 0 || handle(SIGCHLD, on_child) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) {
    pause();
  }
  /* not reached */
  return 42;
}
