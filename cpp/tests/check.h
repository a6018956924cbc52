// check.h: the assertion macros of the C++ tests: a failed check prints where, what, and the
// library's last error, then exits non-zero (so a forked child's failure reaches the parent).
#ifndef NIXL_RS_CPP_TESTS_CHECK_H
#define NIXL_RS_CPP_TESTS_CHECK_H

#include <cstdio>
#include <cstdlib>

#include <nixl.h>
#include <nixl_capi.h>

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s (last C error: %s)\n", __FILE__,    \
                         __LINE__, #cond, nixl_capi_ext_last_error_message());                \
            std::exit(1);                                                                     \
        }                                                                                     \
    } while (0)

// Checks an exact nixl_status_t and names both sides when they differ.
#define CHECK_ST(call, want)                                                                  \
    do {                                                                                      \
        const nixl_status_t got_ = (call);                                                    \
        if (got_ != (want)) {                                                                 \
            std::fprintf(stderr, "%s:%d: %s returned %s, want %s (last C error: %s)\n",       \
                         __FILE__, __LINE__, #call, nixlEnumStrings::statusStr(got_).c_str(), \
                         nixlEnumStrings::statusStr(want).c_str(),                            \
                         nixl_capi_ext_last_error_message());                                 \
            std::exit(1);                                                                     \
        }                                                                                     \
    } while (0)

#define OK(call) CHECK_ST(call, NIXL_SUCCESS)

#endif // NIXL_RS_CPP_TESTS_CHECK_H
