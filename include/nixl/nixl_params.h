/*
 * nixl_params.h: nixlAgentConfig, the agent's construction-time settings.
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
    bool useProgThread;
    // Run the peer-to-peer metadata listener on listenPort (sendLocalMD/fetchRemoteMD peers).
    bool useListenThread;
    int listenPort;
    nixl_thread_sync_t syncMode;
    bool captureTelemetry;
    // Progress-thread poll delay (0 = busy poll).
    std::chrono::microseconds pthrDelay;
    // Metadata-listener poll interval.
    std::chrono::microseconds lthrDelay;
    // How long fetchRemoteMD waits on a central-store watch (kept; nixl-rs reads it from env).
    std::chrono::microseconds etcdWatchTimeout;

    // `num_workers` is accepted and ignored, as in NIXL (it survives for source compatibility).
    nixlAgentConfig(const bool use_prog_thread, const bool use_listen_thread = false,
                    const int port = default_comm_port,
                    const nixl_thread_sync_t sync_mode = nixl_thread_sync_t::NIXL_THREAD_SYNC_DEFAULT,
                    const unsigned int num_workers = 1, const uint64_t pthr_delay_us = 0,
                    const uint64_t lthr_delay_us = 100000, const bool capture_telemetry = false,
                    const std::chrono::microseconds &etcd_watch_timeout = std::chrono::seconds(5))
        : useProgThread(use_prog_thread), useListenThread(use_listen_thread), listenPort(port),
          syncMode(sync_mode), captureTelemetry(capture_telemetry), pthrDelay(pthr_delay_us),
          lthrDelay(lthr_delay_us), etcdWatchTimeout(etcd_watch_timeout) {
        (void)num_workers;
    }
};

#endif // NIXL_RS_NIXL_PARAMS_H
