/* Error names and texts, and the version string. */
#include "sys_test.h"

#include "eddy_config.h"

SYS_TEST_SUITE(errname, NULL);
SYS_TEST_SUITE(strerror, NULL);
SYS_TEST_SUITE(version, NULL);

Test(errname, names_system_errors) {
  EXPECT_STR(eddy_errname(-ECONNREFUSED), "ECONNREFUSED");
  EXPECT_STR(eddy_errname(-EPERM), "EPERM");
  EXPECT_STR(eddy_errname(-EMFILE), "EMFILE");
  EXPECT_STR(eddy_errname(-ENOTSUP), eddy_errname(-EOPNOTSUPP));
}

Test(errname, shared_numbers_use_the_first_name_listed) {
  EXPECT_STR(eddy_errname(-EWOULDBLOCK), "EAGAIN");
  EXPECT_STR(eddy_errname(-EOPNOTSUPP), "EOPNOTSUPP");
}

Test(errname, names_eddy_codes) {
  EXPECT_STR(eddy_errname(EDDY_ECLOSED), "EDDY_ECLOSED");
  EXPECT_STR(eddy_errname(EDDY_EBACKEND), "EDDY_EBACKEND");
  EXPECT_STR(eddy_errname(EDDY_ERESOLVE), "EDDY_ERESOLVE");
  EXPECT_STR(eddy_errname(EDDY_ETLS), "EDDY_ETLS");
  EXPECT_STR(eddy_errname(EDDY_ETRUNCATED), "EDDY_ETRUNCATED");
  EXPECT_STR(eddy_errname(EDDY_EPARSE), "EDDY_EPARSE");
}

Test(errname, eddy_codes_lie_below_every_errno) {
  EXPECT_LT(EDDY_ECLOSED, -4095);
  EXPECT_LT(EDDY_EPARSE, -4095);
}

Test(errname, unknown_codes_are_eunknown) {
  EXPECT_STR(eddy_errname(0), "EUNKNOWN");
  EXPECT_STR(eddy_errname(ECONNREFUSED), "EUNKNOWN"); /* positive */
  EXPECT_STR(eddy_errname(-4000), "EUNKNOWN");
  EXPECT_STR(eddy_errname(-5999), "EUNKNOWN");
  EXPECT_STR(eddy_errname(EDDY_E__LAST), "EUNKNOWN");
  EXPECT_STR(eddy_errname(INT32_MIN), "EUNKNOWN");
}

Test(strerror, system_errors_use_the_c_library_text) {
  EXPECT_STR(eddy_strerror(-ECONNREFUSED), strerror(ECONNREFUSED));
  EXPECT_STR(eddy_strerror(-ENOENT), strerror(ENOENT));
}

Test(strerror, eddy_codes_have_their_own_text) {
  EXPECT_STR(eddy_strerror(EDDY_ECLOSED), "handle is closed");
  EXPECT_STR(eddy_strerror(EDDY_EBACKEND), "unknown loop backend");
  EXPECT_STR(eddy_strerror(EDDY_ERESOLVE), "name resolution failed");
  EXPECT_STR(eddy_strerror(EDDY_ETLS), "TLS error");
  EXPECT_STR(eddy_strerror(EDDY_ETRUNCATED),
             "connection closed without TLS close_notify");
  EXPECT_STR(eddy_strerror(EDDY_EPARSE), "malformed input");
}

Test(strerror, unknown_codes_are_never_null) {
  EXPECT_STR(eddy_strerror(0), "success");
  EXPECT_STR(eddy_strerror(5), "unknown error");
  EXPECT_STR(eddy_strerror(-5999), "unknown error");
  EXPECT_STR(eddy_strerror(INT32_MIN), "unknown error");
  cr_assert(eddy_strerror(-4000) != NULL);
}

Test(version, is_the_project_version) {
  const char *v = eddy_version();
  int major = -1, minor = -1, patch = -1, end = 0;
  EXPECT_STR(v, EDDY_VERSION);
  EXPECT_EQ(sscanf(v, "%d.%d.%d%n", &major, &minor, &patch, &end), 3);
  EXPECT_EQ(v[end], '\0');
  EXPECT_GE(major, 0);
}
