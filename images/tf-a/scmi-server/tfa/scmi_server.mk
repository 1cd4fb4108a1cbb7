# xen-scmi-harness: multi-agent SCMI server for plat/qemu (BL31 only).
# Included from plat/qemu/qemu/platform.mk by harness/images/scmi/tfa.py.
SCMI_SERVER_DIR		:=	plat/qemu/common/scmi_server

include $(SCMI_SERVER_DIR)/sources.mk

PLAT_INCLUDES		+=	-I$(SCMI_SERVER_DIR)

BL31_SOURCES		+=	$(addprefix $(SCMI_SERVER_DIR)/,	\
				$(SCMI_SERVER_SOURCES)			\
				scmi_board.c				\
				tfa/scmi_sip_svc.c)
