// hiredis 0.14 from Debian's libhiredis-dev: only its protocol encoder (redisFormatCommandArgv)
// and reply reader (redisReader) are used; its blocking socket I/O never is.
#include <hiredis/hiredis.h>
