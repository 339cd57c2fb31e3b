/* hiredis_compat.h -- include hiredis (with TLS) the same way everywhere.
 *
 * Debian 12's bookworm-backports ships hiredis 1.x as hiredict with a
 * shim header hiredis/hiredis_ssl.h that maps names onto hiredict's but
 * forgets to include hiredict/hiredict_ssl.h, which declares them.
 */
#ifndef RC_HIREDIS_COMPAT_H
#define RC_HIREDIS_COMPAT_H

#ifdef HAVE_HIREDICT_HIREDICT_SSL_H
#include <hiredict/hiredict_ssl.h>
#endif
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/hiredis_ssl.h>

#endif
