/*
 * nixl_rs/agent_notif.h: nixlAgent's notifications. Included by nixl.h.
 *
 * SPDX-License-Identifier: Apache-2.0
 */
#ifndef NIXL_RS_AGENT_NOTIF_H
#define NIXL_RS_AGENT_NOTIF_H

// Drains the agent's notifications and appends them to `notif_map` (as NIXL: the caller's
// existing entries stay).
inline nixl_status_t nixlAgent::getNotifs(nixl_notifs_t &notif_map, const nixl_opt_args_t *extra_params) {
    nixl_rs::NotifMap m;
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    NIXL_RS_TRY(nixl_capi_create_notif_map(m.out()));
    NIXL_RS_TRY(nixl_capi_get_notifs(agent_, m.get(), o.get()));
    size_t senders = 0;
    NIXL_RS_TRY(nixl_capi_notif_map_size(m.get(), &senders));
    for (size_t i = 0; i < senders; ++i) {
        const char *agent = nullptr;
        NIXL_RS_TRY(nixl_capi_notif_map_get_agent_at(m.get(), i, &agent));
        size_t count = 0;
        NIXL_RS_TRY(nixl_capi_notif_map_get_notifs_size(m.get(), agent, &count));
        std::vector<nixl_blob_t> &msgs = notif_map[agent];
        for (size_t j = 0; j < count; ++j) {
            const void *data = nullptr;
            size_t len = 0;
            NIXL_RS_TRY(nixl_capi_notif_map_get_notif(m.get(), agent, j, &data, &len));
            msgs.emplace_back(static_cast<const char *>(data), data ? len : 0);
        }
    }
    return NIXL_SUCCESS;
}

inline nixl_status_t nixlAgent::genNotif(const std::string &remote_agent, const nixl_blob_t &msg,
                                         const nixl_opt_args_t *extra_params) const {
    nixl_rs::OptArgs o;
    NIXL_RS_TRY(o.build(extra_params));
    return nixl_rs::status_of(
        nixl_capi_gen_notif(agent_, remote_agent.c_str(), msg.data(), msg.size(), o.get()));
}

#endif // NIXL_RS_AGENT_NOTIF_H
