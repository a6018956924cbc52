/*
 * nixl_params.h: nixlAgentConfig, the agent's construction-time settings, layout-identical
 * to NIXL 1.5's (40 bytes; see cpp/tests/test_layout.cpp). Header-only, as in NIXL.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_NIXL_PARAMS_H
#define NIXL_RS_NIXL_PARAMS_H

#include <chrono>
#include <cstdint>

#include "nixl_types.h"

struct nixlAgentConfig {
    // Backends may run a progress thread (nixl-rs's do not need one; the flag is passed on).
    bool useProgThread = false;
    // Run the peer-to-peer metadata listener on listenPort (sendLocalMD/fetchRemoteMD peers).
    bool useListenThread = false;
    uint16_t listenPort = default_comm_port;
    nixl_thread_sync_t syncMode = nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT;
    bool captureTelemetry = false;
    // Progress-thread poll delay in microseconds (0 = busy poll).
    uint64_t pthrDelay = 0;
    // Metadata-listener poll interval in microseconds.
    uint64_t lthrDelay = 100000;
    // How long fetchRemoteMD waits on a central-store watch (nixl-rs reads NIXL_ETCD_* instead).
    std::chrono::microseconds etcdWatchTimeout = std::chrono::microseconds(5000000);

    nixlAgentConfig() = default;
    // `num_workers` is accepted and ignored, as in NIXL. `port` is an int so that the brace
    // initialization engines write with an int variable is not a narrowing error.
    nixlAgentConfig(const bool use_prog_thread, const bool use_listen_thread = false,
                    const int port = default_comm_port,
                    const nixl_thread_sync_t sync_mode = nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT,
                    const unsigned int num_workers = 1, const uint64_t pthr_delay_us = 0,
                    const uint64_t lthr_delay_us = 100000, const bool capture_telemetry = false,
                    const std::chrono::microseconds &etcd_watch_timeout = std::chrono::microseconds(5000000))
        : useProgThread(use_prog_thread), useListenThread(use_listen_thread),
          listenPort(static_cast<uint16_t>(port)), syncMode(sync_mode),
          captureTelemetry(capture_telemetry), pthrDelay(pthr_delay_us), lthrDelay(lthr_delay_us),
          etcdWatchTimeout(etcd_watch_timeout) {
        (void)num_workers;
    }
};

#endif // NIXL_RS_NIXL_PARAMS_H
