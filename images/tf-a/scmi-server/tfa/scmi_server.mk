# xen-scmi-harness: multi-agent SCMI server for plat/qemu (BL31 only).
# Included from plat/qemu/qemu/platform.mk by harness/scmi/tfa.py.
SCMI_SERVER_DIR		:=	plat/qemu/common/scmi_server

PLAT_INCLUDES		+=	-I$(SCMI_SERVER_DIR)

BL31_SOURCES		+=	$(addprefix $(SCMI_SERVER_DIR)/,	\
				scmi_base.c				\
				scmi_board.c				\
				scmi_clock.c				\
				scmi_msg.c				\
				scmi_policy.c				\
				scmi_power_domain.c			\
				scmi_reset_domain.c			\
				scmi_sensor.c				\
				scmi_server.c				\
				scmi_smt.c				\
				scmi_state.c				\
				scmi_trace.c				\
				tfa/scmi_sip_svc.c)
