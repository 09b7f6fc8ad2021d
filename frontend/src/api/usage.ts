// What a Conduit UI does with the API, written against explicit view types.
// Because responses are mapped field by field into these views and requests
// are built the way forms build them, `tsc` fails when the backend renames or
// drops a response field, makes one optional or changes its type, or makes a
// request field required that forms don't send.
import {
  createArticle,
  createArticleComment,
  createArticleFavorite,
  createUser,
  deleteArticle,
  deleteArticleComment,
  deleteArticleFavorite,
  followUserByUsername,
  getArticle,
  getArticleComments,
  getArticles,
  getArticlesFeed,
  getCurrentUser,
  getProfileByUsername,
  getTags,
  login,
  setToken,
  unfollowUserByUsername,
  updateArticle,
  updateCurrentUser,
} from "./client";

export const PAGE_SIZE = 10;

export interface SessionUser {
  username: string;
  email: string;
  token: string;
  bio: string | null;
  image: string | null;
}

export interface AuthorView {
  username: string;
  bio: string | null;
  image: string | null;
  following: boolean;
}

export interface ArticleCard {
  slug: string;
  title: string;
  description: string;
  tagList: string[];
  createdAt: Date;
  updatedAt: Date;
  favorited: boolean;
  favoritesCount: number;
  author: AuthorView;
}

export interface ArticlePage extends ArticleCard {
  body: string;
  comments: CommentView[];
}

export interface CommentView {
  id: number;
  body: string;
  createdAt: Date;
  author: AuthorView;
}

export interface ArticleList {
  articles: ArticleCard[];
  articlesCount: number;
  pageCount: number;
}

// Response shapes, straight from the generated schema via the client's return types.
type UserData = Awaited<ReturnType<typeof getCurrentUser>>["user"];
type ArticlesData = Awaited<ReturnType<typeof getArticles | typeof getArticlesFeed>>;
type ListedArticle = ArticlesData["articles"][number];
type FullArticle = Awaited<ReturnType<typeof getArticle>>["article"];
type CommentData = Awaited<ReturnType<typeof getArticleComments>>["comments"][number];
type AuthorData =
  | Awaited<ReturnType<typeof getProfileByUsername>>["profile"]
  | ListedArticle["author"]
  | FullArticle["author"]
  | CommentData["author"];

const toSession = (u: UserData): SessionUser => ({
  username: u.username,
  email: u.email,
  token: u.token,
  bio: u.bio,
  image: u.image,
});

const toAuthor = (p: AuthorData): AuthorView => ({
  username: p.username,
  bio: p.bio,
  image: p.image,
  following: p.following,
});

const toCard = (a: ListedArticle | FullArticle): ArticleCard => ({
  slug: a.slug,
  title: a.title,
  description: a.description,
  tagList: a.tagList,
  createdAt: new Date(a.createdAt),
  updatedAt: new Date(a.updatedAt),
  favorited: a.favorited,
  favoritesCount: a.favoritesCount,
  author: toAuthor(a.author),
});

const toComment = (c: CommentData): CommentView => ({
  id: c.id,
  body: c.body,
  createdAt: new Date(c.createdAt),
  author: toAuthor(c.author),
});

export const avatarUrl = (author: Pick<AuthorView, "image">): string =>
  author.image ?? "/img/smiley-cyrus.jpeg";

// --- auth and settings ------------------------------------------------------

export async function signIn(email: string, password: string): Promise<SessionUser> {
  const { user } = await login({ email, password });
  setToken(user.token);
  return toSession(user);
}

export async function signUp(username: string, email: string, password: string): Promise<SessionUser> {
  const { user } = await createUser({ username, email, password });
  setToken(user.token);
  return toSession(user);
}

export async function restoreSession(jwt: string): Promise<SessionUser> {
  setToken(jwt);
  return toSession((await getCurrentUser()).user);
}

/** Settings forms send only the fields the user changed. */
export async function changeEmail(email: string): Promise<SessionUser> {
  return toSession((await updateCurrentUser({ email })).user);
}

export async function changeProfile(bio: string, image: string): Promise<SessionUser> {
  return toSession((await updateCurrentUser({ bio, image })).user);
}

export function signOut(): void {
  setToken(null);
}

// --- profiles ---------------------------------------------------------------

export async function loadProfile(username: string): Promise<AuthorView> {
  return toAuthor((await getProfileByUsername(username)).profile);
}

export async function toggleFollow(author: AuthorView): Promise<AuthorView> {
  const { profile } = author.following
    ? await unfollowUserByUsername(author.username)
    : await followUserByUsername(author.username);
  return toAuthor(profile);
}

// --- article lists ----------------------------------------------------------

const toList = (data: ArticlesData): ArticleList => ({
  articles: data.articles.map(toCard),
  articlesCount: data.articlesCount,
  pageCount: Math.ceil(data.articlesCount / PAGE_SIZE),
});

export async function loadGlobalFeed(
  page: number,
  filter: { tag?: string; author?: string; favorited?: string } = {},
): Promise<ArticleList> {
  return toList(await getArticles({ ...filter, limit: PAGE_SIZE, offset: page * PAGE_SIZE }));
}

export async function loadYourFeed(page: number): Promise<ArticleList> {
  return toList(await getArticlesFeed({ limit: PAGE_SIZE, offset: page * PAGE_SIZE }));
}

export async function loadTags(): Promise<string[]> {
  return (await getTags()).tags;
}

// --- one article --------------------------------------------------------------

export async function loadArticlePage(slug: string): Promise<ArticlePage> {
  const [{ article }, { comments }] = await Promise.all([getArticle(slug), getArticleComments(slug)]);
  return { ...toCard(article), body: article.body, comments: comments.map(toComment) };
}

export async function toggleFavorite(card: ArticleCard): Promise<ArticleCard> {
  const { article } = card.favorited
    ? await deleteArticleFavorite(card.slug)
    : await createArticleFavorite(card.slug);
  return toCard(article);
}

export interface EditorForm {
  title: string;
  description: string;
  body: string;
  tagList: string[];
}

/** Returns the new article's slug, to navigate to it. */
export async function publishArticle(form: EditorForm): Promise<string> {
  return (await createArticle(form)).article.slug;
}

/** The editor sends only what changed; a retitled article gets a new slug. */
export async function retitleArticle(slug: string, title: string): Promise<string> {
  return (await updateArticle(slug, { title })).article.slug;
}

export async function removeArticle(slug: string): Promise<void> {
  await deleteArticle(slug);
}

export async function postComment(slug: string, body: string): Promise<CommentView> {
  return toComment((await createArticleComment(slug, { body })).comment);
}

export async function removeComment(slug: string, comment: Pick<CommentView, "id">): Promise<void> {
  await deleteArticleComment(slug, comment.id);
}
