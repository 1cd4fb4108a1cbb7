/*
 * xen-assign-dt: XEN_DOMCTL_assign_device for a device-tree device, from dom0.
 *
 * libxl refuses `dtdev` before any domctl when Xen reports no IOMMU ("passthrough not
 * supported on this platform"), so on QEMU virt the hypervisor's assign path, where the
 * SCI layer sends BASE_SET_DEVICE_PERMISSIONS for the device's access-controllers, is
 * out of xl's reach. This calls it directly through libxenctrl, as libxl would.
 *
 * usage: xen-assign-dt DOMID DT-PATH
 * prints: (an empty line, then) XEN-ASSIGN-DT: domid=N path=P rc=R errno=E name=ENAME
 * exit:   0 the domctl succeeded, 1 it failed (errno printed), 2 bad usage / no Xen
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xenctrl.h>

static const char *errno_name(int e)
{
	switch (e) {
	case 0: return "OK";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EIO: return "EIO";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case ENXIO: return "ENXIO";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: return "other";
	}
}

int main(int argc, char **argv)
{
	xc_interface *xch;
	unsigned long domid;
	char *end;
	int rc, err;

	if (argc != 3) {
		fprintf(stderr, "usage: %s DOMID DT-PATH\n", argv[0]);
		return 2;
	}
	errno = 0;
	domid = strtoul(argv[1], &end, 10);
	if (errno || *end != '\0' || end == argv[1] || domid >= 0x7ff0UL) {
		fprintf(stderr, "%s: %s is no domain id\n", argv[0], argv[1]);
		return 2;
	}
	xch = xc_interface_open(NULL, NULL, 0);
	if (xch == NULL) {
		fprintf(stderr, "%s: xc_interface_open: %s\n", argv[0], strerror(errno));
		return 2;
	}
	rc = xc_assign_dt_device(xch, (uint32_t)domid, argv[2]);
	err = rc ? errno : 0;
	/* on a line of its own: v5's "could not assign dev" printk has no '\n', so what
	 * follows it on the shared console would join Xen's line */
	printf("\nXEN-ASSIGN-DT: domid=%lu path=%s rc=%d errno=%d name=%s\n",
	       domid, argv[2], rc, err, errno_name(err));
	fflush(stdout);
	xc_interface_close(xch);
	return rc ? 1 : 0;
}
