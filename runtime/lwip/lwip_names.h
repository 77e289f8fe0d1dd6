/*
 * lwIP functions whose names our own stack (net/) also uses. Both are in
 * the lwIP image (whole-archive link), so lwIP's are renamed, everywhere
 * lwIP's opt.h reaches: its own files and, after their includes, ours.
 * A new clash shows as "multiple definition" at link: add it here.
 */
#ifndef SHOAL_LWIP_NAMES_H
#define SHOAL_LWIP_NAMES_H
#define icmp_input  lwip_icmp_input
#define netif_init  lwip_netif_init
#define tcp_abort   lwip_tcp_abort
#define tcp_close   lwip_tcp_close
#define tcp_connect lwip_tcp_connect
#define tcp_init    lwip_tcp_init
#define tcp_input   lwip_tcp_input
#define tcp_output  lwip_tcp_output
#define udp_bind    lwip_udp_bind
#define udp_input   lwip_udp_input
#define udp_send    lwip_udp_send
#endif
