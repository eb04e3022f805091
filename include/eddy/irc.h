/* eddy/irc.h: the IRC message layer (RFC 1459, RFC 2812 and the Modern
 * IRC documents, with IRCv3 message tags), on which `eddy irc` is built.
 *
 * Nothing here allocates or touches the network: the parser points into
 * the caller's line, the writer fills the caller's buffer, and the helpers
 * (case mapping, nick and channel validity, ban masks) are pure functions.
 * The parser is written for hostile input: it reads nothing outside the
 * bytes it was given, never recurses, and reports every malformation as an
 * error instead of guessing.
 *
 * Conventions
 *
 * A line is given without its CR LF: the caller's line framing
 * (eddy/line.h) splits the stream. Set its max_length to
 * EDDY_IRC_WIRE_MAX, the longest line a peer may send with tags; a client
 * that sends no tags needs only EDDY_IRC_LINE_MAX.
 *
 * Strings are views (eddy_irc_str_t: a pointer and a length, not NUL
 * terminated). A parsed message's views point into the parsed line and are
 * valid as long as it is.
 *
 * The limits, as the Modern IRC documents and the IRCv3 message-tags
 * specification give them:
 *
 * - the message without its tags is at most 512 bytes counting CR LF, so
 *   at most 510 here (EDDY_IRC_BODY_MAX);
 * - the tags section, its '@' and the space after it counted, is at most
 *   8191 bytes (EDDY_IRC_TAGS_MAX); the tag data a client may send (between
 *   the '@' and the space) at most 4094 (EDDY_IRC_CLIENT_TAGS_MAX). The
 *   parser enforces the first by default and the second with
 *   EDDY_IRC_PARSE_CLIENT: a server parses its clients' lines with it;
 * - at most 15 parameters (EDDY_IRC_PARAMS_MAX).
 *
 * A server's path, per line (no allocation anywhere):
 *
 *   eddy_irc_msg_t m;
 *   switch (eddy_irc_parse(line, len, EDDY_IRC_PARSE_CLIENT, &m)) {
 *   case 0: break;
 *   case -ENODATA: return;            // empty line: ignored
 *   case EDDY_ETOOLONG: reply 417 ERR_INPUTTOOLONG; return;
 *   default: return;                  // EDDY_EPARSE: dropped
 *   }
 *   if (eddy_irc_command_is(&m, "PRIVMSG")) ...
 *
 * and to answer:
 *
 *   eddy_irc_msg_t r;
 *   eddy_irc_msg_init(&r, EDDY_IRC_STR("irc.example.net"), EDDY_IRC_STR("001"));
 *   eddy_irc_msg_add(&r, nick, nick_len);
 *   eddy_irc_msg_add(&r, "Welcome", 7);
 *   int n = eddy_irc_write(&r, out, sizeof out);   // "... \r\n", or -ENOSPC
 *
 * Errors: EDDY_EPARSE for malformed input, EDDY_ETOOLONG for input over a
 * limit, -ENODATA for an empty line, -EINVAL for a message the writer
 * cannot represent, -ENOSPC when the output does not fit (the line limit
 * or the caller's buffer), -E2BIG for a sixteenth parameter.
 */
#ifndef EDDY_IRC_H
#define EDDY_IRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "core.h"
#include "net.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EDDY_IRC_LINE_MAX 512  /* bytes of a message without tags, CR LF in */
#define EDDY_IRC_BODY_MAX 510  /* the same without CR LF */
#define EDDY_IRC_TAGS_MAX 8191 /* bytes of the tags section, '@' and ' ' in */
#define EDDY_IRC_CLIENT_TAGS_MAX 4094 /* bytes of tag data a client sends */
#define EDDY_IRC_PARAMS_MAX 15        /* parameters of one message */
/* The longest line with tags, CR LF in: what line framing should allow. */
#define EDDY_IRC_WIRE_MAX (EDDY_IRC_TAGS_MAX + EDDY_IRC_LINE_MAX)

/* A string view: n bytes at p, not NUL terminated. An absent part has
 * p == NULL and n == 0. */
typedef struct eddy_irc_str {
  const char *p;
  size_t n;
} eddy_irc_str_t;

/* A view of a string literal. */
#define EDDY_IRC_STR(lit) ((eddy_irc_str_t){(lit), sizeof(lit) - 1})

/* ---- Messages ---- */

/* One message. The parser fills every field; a program that writes a
 * message fills them itself (eddy_irc_msg_init and eddy_irc_msg_add) and
 * the writer reads tags, source, command, params and trailing. */
typedef struct eddy_irc_msg {
  /* The tag data, escaped as on the wire, without its '@' and the space
   * after it ("a=b;+c"); n == 0 when the message has no tags. Walk it with
   * eddy_irc_tag_next, look a key up with eddy_irc_tag_find. */
  eddy_irc_str_t tags;
  /* The source (prefix) without its ':' ("nick!user@host",
   * "irc.example.net"); n == 0 when there is none. The parser also splits
   * it: nick is what precedes the first '!' or '@' (a server's name, for a
   * server source), user what lies between that '!' and the '@', host what
   * follows the '@'; a missing part is empty. The writer reads only
   * source. */
  eddy_irc_str_t source;
  eddy_irc_str_t nick, user, host;
  /* The command as sent, letters (in any case: compare with
   * eddy_irc_command_is) or exactly three digits. */
  eddy_irc_str_t command;
  /* The command's value when it is a numeric reply (0 to 999), else -1. */
  int numeric;
  /* The parameters, the trailing one without its ':'. */
  unsigned nparams;
  eddy_irc_str_t params[EDDY_IRC_PARAMS_MAX];
  /* Whether the last parameter came after " :" (or, for the writer: write
   * it so even when it needs no colon, as servers do for message text). */
  bool trailing;
  /* Set by the parser with EDDY_IRC_PARSE_TRUNCATE when it cut the line. */
  bool truncated;
} eddy_irc_msg_t;

/* Parser flags. */
enum {
  /* The line comes from a client: its tag data may be at most
   * EDDY_IRC_CLIENT_TAGS_MAX bytes (instead of a tags section of
   * EDDY_IRC_TAGS_MAX). */
  EDDY_IRC_PARSE_CLIENT = 1 << 0,
  /* A message (without tags) longer than EDDY_IRC_BODY_MAX is cut to that
   * length, less the bytes of a UTF-8 sequence it would split, and parsed
   * (m->truncated set) instead of failing with EDDY_ETOOLONG. Tags over
   * their limit are still an error. */
  EDDY_IRC_PARSE_TRUNCATE = 1 << 1,
};

/* Parses one line line[0..len), without its CR LF, into *m:
 *
 *   [ '@' tags SPACE ] [ ':' source SPACE ] command *( SPACE param )
 *
 * where the last param may follow " :" and then holds anything but NUL,
 * CR and LF, spaces and an empty string included. Runs of spaces count as
 * one, spaces before the command and after the last parameter are
 * ignored. After fourteen parameters the fifteenth is the rest of the line
 * (its ':' dropped if it has one), as RFC 2812 allows, so a message never
 * has more than fifteen.
 *
 * Returns 0, or:
 *   -ENODATA       the line is empty or only spaces (Modern IRC: ignore it);
 *   EDDY_ETOOLONG  the message without tags is over EDDY_IRC_BODY_MAX bytes
 *                  (unless EDDY_IRC_PARSE_TRUNCATE), or the tags are over
 *                  their limit (see the flags); a server answers 417;
 *   EDDY_EPARSE    a NUL, CR or LF anywhere in the line; an empty source or
 *                  tags section; tags not of the form key[=value](;...) with
 *                  keys ['+'][vendor'/']name (letters, digits, '-', and '.'
 *                  in the vendor); a command missing, not all letters, or
 *                  digits other than exactly three; a source or tags with
 *                  nothing after them.
 * On error *m is unspecified. Empty tags (";;", a final ';') are accepted
 * and skipped by eddy_irc_tag_next. */
EDDY_API int eddy_irc_parse(const char *line, size_t len, unsigned flags,
                            eddy_irc_msg_t *m);

/* Whether m's command is cmd (a NUL-terminated name), letters compared
 * without regard to ASCII case. */
EDDY_API bool eddy_irc_command_is(const eddy_irc_msg_t *m, const char *cmd);

/* Clears *m and sets its source (n == 0 for none) and command. */
EDDY_API void eddy_irc_msg_init(eddy_irc_msg_t *m, eddy_irc_str_t source,
                                eddy_irc_str_t command);

/* Appends a parameter (borrowed: it must outlive the write). Returns 0, or
 * -E2BIG when m already has EDDY_IRC_PARAMS_MAX. Whether it can be written
 * is checked by eddy_irc_write. */
EDDY_API int eddy_irc_msg_add(eddy_irc_msg_t *m, const char *p, size_t n);

/* Writes m as one line, CR LF included, into out[0..cap):
 *
 *   [ '@' tags ' ' ] [ ':' source ' ' ] command *( ' ' param )
 *
 * the last param prefixed with ':' when it is empty, starts with ':',
 * holds a space, or m->trailing is set. Tags are copied as they are (they
 * must be escaped already: see eddy_irc_tag_append). Returns the line's
 * length, or:
 *   -EINVAL  something cannot be represented: a command not letters nor
 *            three digits; a source that holds a space; a param other than the last that is empty, holds a
 *            space or starts with ':'; a NUL, CR or LF anywhere; tags the
 *            parser would refuse; more than EDDY_IRC_PARAMS_MAX params;
 *   -ENOSPC  the line without tags is over EDDY_IRC_LINE_MAX bytes, the
 *            tags section over EDDY_IRC_TAGS_MAX, or the line over cap.
 * Nothing is ever cut: on error out holds nothing useful. */
EDDY_API int eddy_irc_write(const eddy_irc_msg_t *m, char *out, size_t cap);

/* How many bytes a last, trailing parameter may have for m to fit in
 * EDDY_IRC_LINE_MAX once added ("PRIVMSG #chan :" and the source already
 * in m), or 0 if none. Tags are not counted (they have their own limit). */
EDDY_API size_t eddy_irc_room(const eddy_irc_msg_t *m);

/* How many bytes of text[0..len) to send when room bytes are free: len if
 * it fits, else at most room, moved back to the start of a UTF-8 sequence
 * it would split (by up to three bytes; text that is not UTF-8 is cut at
 * room). A server splits a long PRIVMSG with
 *   n = eddy_irc_fit(text, len, eddy_irc_room(&m));
 * sending text[0..n) and going on with the rest. */
EDDY_API size_t eddy_irc_fit(const char *text, size_t len, size_t room);

/* The three digits of numeric (0 to 999) in out, NUL terminated, ready to
 * be a command ("001"). */
EDDY_API eddy_irc_str_t eddy_irc_numeric(int numeric, char out[4]);

/* ---- Tags ---- */

/* One tag: its key ("+example.com/foo") and its value escaped as on the
 * wire (empty when the tag has none or "key="). */
typedef struct eddy_irc_tag {
  eddy_irc_str_t key;
  eddy_irc_str_t raw;
} eddy_irc_tag_t;

/* Walks m's tags: start with *pos = 0; each call fills *tag and returns
 * true, or returns false after the last. Tags come in wire order; a key may
 * repeat (the last one counts, as eddy_irc_tag_find does). */
EDDY_API bool eddy_irc_tag_next(const eddy_irc_msg_t *m, size_t *pos,
                                eddy_irc_tag_t *tag);

/* Finds the last tag with the key (compared exactly). Returns true and
 * fills *tag, or false. */
EDDY_API bool eddy_irc_tag_find(const eddy_irc_msg_t *m, const char *key,
                                size_t key_len, eddy_irc_tag_t *tag);

/* Unescapes the value raw[0..n) into out, which needs n bytes and may be
 * raw itself (unescaping in place; the text only shrinks): "\:" is ';',
 * "\s" a space, "\\" a backslash, "\r" CR, "\n" LF, a backslash before any
 * other character is dropped, a final lone backslash too. Returns the
 * value's length. */
EDDY_API size_t eddy_irc_tag_unescape(const char *raw, size_t n, char *out);

/* Appends the tag key=value to the tag data tags[0..*len) of capacity cap,
 * with a ';' before it if *len > 0, escaping the value (value_len 0: no
 * '='). Returns 0 and moves *len, or -EINVAL for a key the parser would
 * refuse, or -ENOSPC (then *len and the data are unchanged). Values may
 * hold any bytes but NUL. */
EDDY_API int eddy_irc_tag_append(char *tags, size_t cap, size_t *len,
                                 const char *key, size_t key_len,
                                 const char *value, size_t value_len);

/* ---- Case mapping ---- */

/* How nick and channel names compare, as ISUPPORT's CASEMAPPING token
 * names it. rfc1459, what ircd-hybrid announces and eddy uses: ASCII
 * letters, and {}|^ are the lower case of []\~. strict-rfc1459: the same
 * without ^ and ~. ascii: letters only. */
typedef enum eddy_irc_casemap {
  EDDY_IRC_CASEMAP_RFC1459 = 0,
  EDDY_IRC_CASEMAP_STRICT_RFC1459 = 1,
  EDDY_IRC_CASEMAP_ASCII = 2,
} eddy_irc_casemap_t;

/* The ISUPPORT name of cm ("rfc1459", "strict-rfc1459", "ascii"). */
EDDY_API const char *eddy_irc_casemap_name(eddy_irc_casemap_t cm);

/* The lower case of byte c under cm: the fold two names are compared by. */
EDDY_API unsigned char eddy_irc_lower(eddy_irc_casemap_t cm, unsigned char c);

/* Writes the lower case of s[0..n) to out (n bytes; may be s). */
EDDY_API void eddy_irc_lower_str(eddy_irc_casemap_t cm, const char *s, size_t n,
                                 char *out);

/* Compares a[0..an) and b[0..bn) under cm, as memcmp of their lower cases
 * followed by length: <0, 0 or >0. */
EDDY_API int eddy_irc_casecmp(eddy_irc_casemap_t cm, const char *a, size_t an,
                              const char *b, size_t bn);

/* Whether the two are equal under cm. */
EDDY_API bool eddy_irc_equal(eddy_irc_casemap_t cm, const char *a, size_t an,
                             const char *b, size_t bn);

/* A 64-bit hash (FNV-1a) of the lower case of s[0..n): names equal under cm
 * hash equal, so a table keyed by nick or channel needs no lowered copy. */
EDDY_API uint64_t eddy_irc_hash(eddy_irc_casemap_t cm, const char *s, size_t n);

/* ---- Names ---- */

/* Whether s[0..n) is a nickname (RFC 2812): 1 to max bytes, a letter or
 * one of []\`_^{|} first, then letters, digits, those and '-'. */
EDDY_API bool eddy_irc_nick_valid(const char *s, size_t n, size_t max);

/* Whether s[0..n) is a channel name: '#' or '&', then 1 or more bytes
 * other than NUL, BEL (0x07), CR, LF, space, ',' and ':'; at most max
 * bytes in all. */
EDDY_API bool eddy_irc_channel_valid(const char *s, size_t n, size_t max);

/* ---- Masks ---- */

/* Whether subject[0..sn) ("nick!user@host") matches mask[0..mn)
 * ("*!*@*.example.net"): '*' stands for any run of bytes, empty included,
 * '?' for any one byte, other bytes for themselves under cm (there is no
 * escape). Iterative, with no recursion and no allocation: the work is at
 * most proportional to mn * sn, whatever the mask. */
EDDY_API bool eddy_irc_mask_match(eddy_irc_casemap_t cm, const char *mask,
                                  size_t mn, const char *subject, size_t sn);

/* ---- Numeric replies ---- */

/* The numerics eddy's server sends, by their names in RFC 2812 and the
 * Modern IRC documents. */
enum {
  EDDY_IRC_RPL_WELCOME = 1,
  EDDY_IRC_RPL_YOURHOST = 2,
  EDDY_IRC_RPL_CREATED = 3,
  EDDY_IRC_RPL_MYINFO = 4,
  EDDY_IRC_RPL_ISUPPORT = 5,
  EDDY_IRC_RPL_UMODEIS = 221,
  EDDY_IRC_RPL_LUSERCLIENT = 251,
  EDDY_IRC_RPL_LUSERCHANNELS = 254,
  EDDY_IRC_RPL_LUSERME = 255,
  EDDY_IRC_RPL_AWAY = 301,
  EDDY_IRC_RPL_USERHOST = 302,
  EDDY_IRC_RPL_ISON = 303,
  EDDY_IRC_RPL_UNAWAY = 305,
  EDDY_IRC_RPL_NOWAWAY = 306,
  EDDY_IRC_RPL_WHOISUSER = 311,
  EDDY_IRC_RPL_WHOISSERVER = 312,
  EDDY_IRC_RPL_WHOISOPERATOR = 313,
  EDDY_IRC_RPL_ENDOFWHO = 315,
  EDDY_IRC_RPL_WHOISIDLE = 317,
  EDDY_IRC_RPL_ENDOFWHOIS = 318,
  EDDY_IRC_RPL_WHOISCHANNELS = 319,
  EDDY_IRC_RPL_LISTSTART = 321,
  EDDY_IRC_RPL_LIST = 322,
  EDDY_IRC_RPL_LISTEND = 323,
  EDDY_IRC_RPL_CHANNELMODEIS = 324,
  EDDY_IRC_RPL_CREATIONTIME = 329,
  EDDY_IRC_RPL_NOTOPIC = 331,
  EDDY_IRC_RPL_TOPIC = 332,
  EDDY_IRC_RPL_TOPICWHOTIME = 333,
  EDDY_IRC_RPL_INVITING = 341,
  EDDY_IRC_RPL_VERSION = 351,
  EDDY_IRC_RPL_WHOREPLY = 352,
  EDDY_IRC_RPL_NAMREPLY = 353,
  EDDY_IRC_RPL_ENDOFNAMES = 366,
  EDDY_IRC_RPL_BANLIST = 367,
  EDDY_IRC_RPL_ENDOFBANLIST = 368,
  EDDY_IRC_RPL_MOTD = 372,
  EDDY_IRC_RPL_MOTDSTART = 375,
  EDDY_IRC_RPL_ENDOFMOTD = 376,
  EDDY_IRC_RPL_ENDOFWHOWAS = 369,
  EDDY_IRC_RPL_TIME = 391,
  EDDY_IRC_ERR_NOSUCHNICK = 401,
  EDDY_IRC_ERR_NOSUCHSERVER = 402,
  EDDY_IRC_ERR_NOSUCHCHANNEL = 403,
  EDDY_IRC_ERR_WASNOSUCHNICK = 406,
  EDDY_IRC_ERR_TOOMANYTARGETS = 407,
  EDDY_IRC_ERR_CANNOTSENDTOCHAN = 404,
  EDDY_IRC_ERR_TOOMANYCHANNELS = 405,
  EDDY_IRC_ERR_NOORIGIN = 409,
  EDDY_IRC_ERR_INVALIDCAPCMD = 410,
  EDDY_IRC_ERR_NORECIPIENT = 411,
  EDDY_IRC_ERR_NOTEXTTOSEND = 412,
  EDDY_IRC_ERR_INPUTTOOLONG = 417,
  EDDY_IRC_ERR_UNKNOWNCOMMAND = 421,
  EDDY_IRC_ERR_NOMOTD = 422,
  EDDY_IRC_ERR_NONICKNAMEGIVEN = 431,
  EDDY_IRC_ERR_ERRONEUSNICKNAME = 432,
  EDDY_IRC_ERR_NICKNAMEINUSE = 433,
  EDDY_IRC_ERR_NICKCOLLISION = 436,
  EDDY_IRC_ERR_USERNOTINCHANNEL = 441,
  EDDY_IRC_ERR_NOTONCHANNEL = 442,
  EDDY_IRC_ERR_USERONCHANNEL = 443,
  EDDY_IRC_ERR_NOTREGISTERED = 451,
  EDDY_IRC_ERR_NEEDMOREPARAMS = 461,
  EDDY_IRC_ERR_ALREADYREGISTERED = 462,
  EDDY_IRC_ERR_PASSWDMISMATCH = 464,
  EDDY_IRC_ERR_CHANNELISFULL = 471,
  EDDY_IRC_ERR_UNKNOWNMODE = 472,
  EDDY_IRC_ERR_INVITEONLYCHAN = 473,
  EDDY_IRC_ERR_BANNEDFROMCHAN = 474,
  EDDY_IRC_ERR_BADCHANNELKEY = 475,
  EDDY_IRC_ERR_BADCHANMASK = 476,
  EDDY_IRC_ERR_NOPRIVILEGES = 481,
  EDDY_IRC_ERR_CHANOPRIVSNEEDED = 482,
  EDDY_IRC_ERR_UMODEUNKNOWNFLAG = 501,
  EDDY_IRC_ERR_USERSDONTMATCH = 502,
};

/* ---- The server ----
 *
 * An IRC server on a loop (`eddy irc` is one): the program accepts
 * streams, plain or TLS, and hands each to eddy_irc_server_serve; the
 * server does the rest, for a single server (no links): registration with
 * PASS, NICK, USER and IRCv3 capability negotiation (CAP LS, REQ, LIST,
 * END; multi-prefix and server-time), the welcome (001 to 005 with
 * ISUPPORT, LUSERS, the MOTD or 422), and PING, PONG, QUIT, JOIN, PART,
 * PRIVMSG, NOTICE, NAMES, TOPIC, WHO, WHOIS, LIST, ISON, AWAY, NICK,
 * KICK, INVITE, MODE (channel +o +v +t +n +m +i +k +l +b, user +i),
 * USERHOST, WHOWAS (no history: 406), MOTD, LUSERS, VERSION and TIME,
 * each error as its numeric.
 * Nicks and channels compare under rfc1459 case mapping; the first to
 * join a channel is its operator.
 *
 * What a hostile client meets:
 *
 * - Lines over 512 bytes (tags aside) are answered 417 and dropped; the
 *   client stays. Relayed text that would make a longer line is cut at a
 *   UTF-8 boundary.
 * - Flood control, as ircd-hybrid does it: a client's lines are handled at
 *   most flood_lines a second (a burst of 8 times that until it first
 *   joins or talks); past that its stream is not read until the next
 *   second, so the excess waits in its own socket buffer and slows only
 *   it.
 * - A client whose unsent output passes sendq bytes (one that never
 *   reads) is dropped with "Max SendQ exceeded", seen by its channels as
 *   its QUIT.
 * - A client silent for ping_timeout seconds is sent a PING, and dropped
 *   ("Ping timeout") after as long again without a line; one that has not
 *   registered by then is dropped too.
 * - Past max_clients, a new connection is told "Server is full" and
 *   closed.
 *
 * A client's writes are coalesced (eddy_stream_set_coalesce): what one
 * turn sends it, a channel's traffic included, leaves in one system call.
 * A message to a channel is formatted once for all its members.
 *
 * Another service can share a channel (`eddy chat --irc` does): it sees
 * what IRC clients say there through the message callback, and speaks into
 * it with eddy_irc_server_say, as a user that is not a client.
 */

typedef struct eddy_irc_server eddy_irc_server;

typedef struct eddy_irc_server_options {
  const char *name;     /* the server's name; NULL: "irc.eddy.local" */
  const char *network;  /* ISUPPORT NETWORK; NULL: "eddy" */
  const char *motd;     /* the message of the day, lines split on LF
                           (copied); NULL: 422 ERR_NOMOTD */
  const char *password; /* PASS a client must give (copied); NULL: none */
  size_t max_clients;   /* 0: 10000 */
  double ping_timeout;  /* seconds; 0: 120 */
  size_t sendq;         /* bytes of unsent output; 0: 512 KiB */
  unsigned flood_lines; /* lines a second; 0: 5 */
  /* A client's connection ended (after its QUIT was sent to its
   * channels). May be NULL. */
  void (*closed)(eddy_irc_server *srv, void *arg);
  /* A registered client sent PRIVMSG or NOTICE to a channel: nick and
   * text (not NUL terminated, borrowed for the call). The channel's name
   * as the channel spells it. May be NULL. */
  void (*message)(eddy_irc_server *srv, const char *channel, const char *nick,
                  size_t nick_len, const char *text, size_t text_len,
                  bool notice, void *arg);
  void *arg;
} eddy_irc_server_options;

/* Creates a server on loop (options NULL for the defaults). Returns 0 and
 * sets *out, -EINVAL (a name that holds a space or is empty), or
 * -ENOMEM. */
EDDY_API int eddy_irc_server_new(eddy_loop *loop,
                                 const eddy_irc_server_options *options,
                                 eddy_irc_server **out);

/* Serves one client on s, which the server now owns (it sets its
 * callbacks and closes it). Returns 0; on -ENOMEM (or EDDY_ECLOSED once
 * the server is stopping) s has been aborted and closed is not called. */
EDDY_API int eddy_irc_server_serve(eddy_irc_server *srv, eddy_stream *s);

/* Makes channel (a valid name) exist while it has no members, with topic
 * (NULL: none): a shared room that IRC clients find in LIST. Returns 0,
 * -EINVAL or -ENOMEM. */
EDDY_API int eddy_irc_server_keep_channel(eddy_irc_server *srv,
                                          const char *channel,
                                          const char *topic);

/* Says text[0..len) in channel as nick, a user outside IRC: its members
 * get ":nick!user@host PRIVMSG channel :text" with user and host from
 * the arguments (NULL: "bridge" and the server's name). Text too long for
 * one line goes as several, split at UTF-8 boundaries; CR, LF and NUL
 * become spaces; a nick
 * that is not a valid one has its bad bytes replaced by '_'. Returns the
 * number of members it went to, -ENOENT (no such channel) or -EINVAL. */
EDDY_API int eddy_irc_server_say(eddy_irc_server *srv, const char *channel,
                                 const char *nick, const char *user,
                                 const char *host, const char *text,
                                 size_t len);

/* Replaces the message of the day (copied; NULL: 422 from now on).
 * Returns 0 or -ENOMEM (the old one stays). */
EDDY_API int eddy_irc_server_set_motd(eddy_irc_server *srv, const char *motd);

/* The clients connected, registered or not. */
EDDY_API size_t eddy_irc_server_clients(const eddy_irc_server *srv);

/* The graceful stop: every client is sent "ERROR :Closing Link: ..."
 * with reason (NULL: "Server shutting down") and its stream closed once
 * that is sent; new streams are refused. closed is called for each. */
EDDY_API void eddy_irc_server_stop(eddy_irc_server *srv, const char *reason);

/* Aborts every client (closed is not called) and frees the server. */
EDDY_API void eddy_irc_server_free(eddy_irc_server *srv);

#ifdef __cplusplus
}
#endif

#endif
