/* buildinfo.h - facts baked in at build time by cmake/buildinfo.cmake. */
#ifndef JARVIS_BUILDINFO_H
#define JARVIS_BUILDINFO_H

extern const char jarvis_build_version[]; /* project version, "0.1.0" */
extern const char jarvis_build_commit[];  /* git commit, "" when unknown */
extern const char jarvis_build_time[];    /* RFC 3339 UTC, "" when unknown */
extern const int jarvis_build_dirty;      /* 1 dirty, 0 clean, -1 unknown */

#endif
