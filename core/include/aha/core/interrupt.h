// Ctrl-C during training: the first SIGINT/SIGTERM asks the run to stop after the current step
// (checkpoint saved, run marked paused); a second one ends the process at once.
#pragma once

namespace aha {

// Installs the handlers (idempotent). Only commands that poll stop_requested() install them:
// elsewhere Ctrl-C keeps its default meaning.
void install_interrupt_handler();
// True once a stop was requested. Under MPI every rank must agree: see stop_requested_all().
bool stop_requested();
// The OR of stop_requested() over all ranks (one small allreduce; rank-local without MPI).
bool stop_requested_all();

}  // namespace aha
