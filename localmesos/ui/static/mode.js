// How the page reaches the agents. A master serves this file: the agents are other origins, so
// the page reads their /files/read with JSONP ("direct"). `localmesos ui` serves its own
// version with "proxy": agent calls go to /agent/<agent-id>/<path> on the page's origin.
window.MESOS_UI_MODE = { agents: "direct" };
