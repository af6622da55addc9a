// Every environment variable msinfer reads is declared here, and read nowhere else.
#pragma once

#include <optional>
#include <string>

namespace msi::env {

// MSI_LOG_LEVEL: trace|debug|info|warn|error|off (default warn).
std::string log_level();

// The launcher variables (torchrun, mpirun wrappers, Slurm scripts) for the multi-process
// bootstrap (comm/bootstrap.h); std::nullopt when unset. Parsed and checked by
// comm::bootstrap_options_from_env().
std::optional<std::string> master_addr();  // MASTER_ADDR: the rendezvous server's host
std::optional<std::string> master_port();  // MASTER_PORT: its TCP port
std::optional<std::string> rank();         // RANK: this process, 0 ≤ RANK < WORLD_SIZE
std::optional<std::string> world_size();   // WORLD_SIZE: the number of processes

}  // namespace msi::env
