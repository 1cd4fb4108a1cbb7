# The server's portable sources: the one list both builds use.
# tfa/scmi_server.mk includes it for BL31; harness/images/scmi/tfa.py reads it for
# the host build (harness/images/scmi/host.py). One file a line, board tables
# (scmi_board.c, generated) and port files are added by each build.
SCMI_SERVER_SOURCES	:=	scmi_base.c		\
				scmi_clock.c		\
				scmi_fault.c		\
				scmi_msg.c		\
				scmi_policy.c		\
				scmi_power_domain.c	\
				scmi_reset_domain.c	\
				scmi_sensor.c		\
				scmi_server.c		\
				scmi_smt.c		\
				scmi_state.c		\
				scmi_trace.c
