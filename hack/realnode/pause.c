/* The pod sandbox's PID 1 on ship's real node (the role of registry.k8s.io/pause, which this
 * machine cannot pull): hold the pod's namespaces, exit on SIGINT/SIGTERM, reap zombies.
 * Built static by hack/build-binaries.sh and pushed to ship's registry by hack/real-node.sh. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, 0, WNOHANG) > 0) {} }

int main(void) {
  struct sigaction term = {0}, child = {0};
  term.sa_handler = stop;
  sigaction(SIGINT, &term, 0);
  sigaction(SIGTERM, &term, 0);
  child.sa_handler = reap;
  child.sa_flags = SA_NOCLDSTOP;
  sigaction(SIGCHLD, &child, 0);
  for (;;) pause();
}
